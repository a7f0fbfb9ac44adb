"""Users and API tokens (admin only: the `users:admin` permission, which only the admin
role holds). The rules stay those of `llmos.security.identities`: a token's role is one
its user may hand out (`GRANTABLE`), an app token names its deployments, and the last
admin cannot be removed. Every change is audited there, as the calling admin.

`llmos auth init` (the first admin and its token) is deliberately not an operation: it
bootstraps a workspace that has no identities yet, so nobody could be authorised to call
it over HTTP; it runs on the workspace's machine, whose files already hold everything.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from llmos.ops.context import Context
from llmos.ops.registry import operation
from llmos.ops.results import Result, Timestamp

PERMISSION = "users:admin"


class UserInfo(Result):
    name: str
    role: str = Field(description="admin, developer, viewer or app")
    created_at: Timestamp
    active_tokens: int = Field(0, description="Tokens neither revoked nor expired")
    removed: bool = False
    suspended: bool = Field(False, description="Its tokens are refused until an admin resumes it")


class TokenInfo(Result):
    id: int
    prefix: str = Field(description="The first characters of the token, kept in clear to tell tokens apart")
    user: str
    role: str
    deployments: list[str] = Field(default_factory=list, description="What an app token may call")
    state: str = Field(description="active, expired, suspended or revoked")
    created_at: Timestamp | None = None
    expires_at: Timestamp | None = None
    revoked_at: Timestamp | None = None
    last_used_at: Timestamp | None = None


class NewToken(TokenInfo):
    token: str = Field(description="The token itself: shown only in this answer, stored only as its hash")


@operation(PERMISSION)
def users(ctx: Context) -> list[UserInfo]:
    """Users and how many usable tokens each holds."""
    from llmos.security.identities import list_users

    return [UserInfo(**row) for row in list_users(ctx.store)]


@operation(PERMISSION)
def add_user(ctx: Context, name: str, role: str = "developer") -> UserInfo:
    """Add a user (give it a token with `create_token`); a removed name can be added again."""
    from llmos.security.identities import add_user as add
    from llmos.security.identities import user_info

    return UserInfo(**user_info(add(ctx.store, name, role)))


@operation(PERMISSION)
def remove_user(ctx: Context, name: str) -> UserInfo:
    """Remove a user and revoke its tokens at once (the last admin cannot be removed)."""
    from llmos.security.identities import remove_user as remove
    from llmos.security.identities import user_info

    return UserInfo(**user_info(remove(ctx.store, name)), removed=True)


@operation(PERMISSION)
def tokens(ctx: Context, user: str | None = None) -> list[TokenInfo]:
    """Tokens (prefix, user, role, state, expiry, last use); never the tokens themselves."""
    from llmos.security.identities import list_tokens

    return [TokenInfo(**row) for row in list_tokens(ctx.store, user)]


@operation(PERMISSION)
def create_token(
    ctx: Context,
    user: str,
    role: str | None = None,
    expires: str | None = None,
    deployments: list[str] | None = None,
) -> NewToken:
    """A new token for `user` (role: the user's unless given; `expires` such as 30d, 12h);
    the token is in this result only."""
    from llmos.security.identities import create_token as create

    ttl: str | timedelta | None = expires
    secret, info = create(ctx.store, user, role, ttl, deployments)
    return NewToken(**info, token=secret)


@operation(PERMISSION)
def revoke_token(ctx: Context, token: str) -> TokenInfo:
    """Revoke a token, named by its id, its prefix or itself; a server refuses it from the next request."""
    from llmos.security.identities import revoke_token as revoke

    return TokenInfo(**revoke(ctx.store, str(token)))


@operation(PERMISSION)
def suspend_token(ctx: Context, token: str, resume: bool = False) -> TokenInfo:
    """Suspend a token (id, prefix or itself): refused from the next request until resumed
    (`resume=True`); unlike revoking, it can be given back."""
    from llmos.security.identities import suspend_token as suspend

    return TokenInfo(**suspend(ctx.store, str(token), resume))


@operation(PERMISSION)
def suspend_user(ctx: Context, name: str, resume: bool = False) -> UserInfo:
    """Suspend a user: every token it holds is refused until resumed (`resume=True`)."""
    from llmos.security.identities import suspend_user as suspend
    from llmos.security.identities import user_info

    return UserInfo(**user_info(suspend(ctx.store, name, resume)))
