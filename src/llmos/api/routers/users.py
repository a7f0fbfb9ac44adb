"""`/v1/users` and `/v1/tokens`: who may call this server (admins only, `users:admin`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from llmos.api.access import op
from llmos.api.dependencies import context
from llmos.core.errors import UsageError
from llmos.ops import users as ops
from llmos.ops.context import Context
from llmos.ops.users import NewToken, TokenInfo, UserInfo


class UserRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="The user name")
    role: str = Field("developer", description="admin, developer, viewer or app")


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(description="The user the token speaks for")
    role: str | None = Field(
        None, description="The token's role, one its user may hand out (default: the user's)"
    )
    expires: str | None = Field(None, description="Lifetime such as 30d, 12h, 90m (default: none)")
    deployments: list[str] | None = Field(None, description="What an app token may call")


class SuspendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resume: bool = Field(False, description="Give the token or user back")


def router(allow: Any) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["users"], dependencies=[Depends(allow)])

    @api.get("/users", response_model=list[UserInfo], openapi_extra=op("users"))
    def users(ctx: Context = Depends(context)) -> list[UserInfo]:
        return ops.users(ctx)

    @api.post("/users", response_model=UserInfo, openapi_extra=op("add_user"))
    def add_user(body: UserRequest, ctx: Context = Depends(context)) -> UserInfo:
        return ops.add_user(ctx, body.name, body.role)

    @api.delete("/users/{name}", response_model=UserInfo, openapi_extra=op("remove_user"))
    def remove_user(name: str, ctx: Context = Depends(context)) -> UserInfo:
        return ops.remove_user(ctx, name)

    @api.get("/tokens", response_model=list[TokenInfo], openapi_extra=op("tokens"))
    def tokens(user: str | None = None, ctx: Context = Depends(context)) -> list[TokenInfo]:
        return ops.tokens(ctx, user)

    @api.post("/tokens", response_model=NewToken, openapi_extra=op("create_token"))
    def create_token(body: TokenRequest, ctx: Context = Depends(context)) -> NewToken:
        return ops.create_token(ctx, body.user, body.role, body.expires, body.deployments)

    @api.delete("/tokens/{token}", response_model=TokenInfo, openapi_extra=op("revoke_token"))
    def revoke_token(token: str, ctx: Context = Depends(context)) -> TokenInfo:
        """`token`: the token's id or prefix (a whole token does not belong in a URL, which is logged)."""
        from llmos.security.identities import PREFIX_CHARS

        if len(token) > PREFIX_CHARS and not token.isdigit():
            raise UsageError(
                f"token: give the token's id or its {PREFIX_CHARS}-character prefix, not the token"
            )
        return ops.revoke_token(ctx, token)

    @api.post("/tokens/{token}/suspend", response_model=TokenInfo, openapi_extra=op("suspend_token"))
    def suspend_token(
        token: str, body: SuspendRequest | None = None, ctx: Context = Depends(context)
    ) -> TokenInfo:
        """`token`: the token's id or prefix; `{"resume": true}` gives it back."""
        from llmos.security.identities import PREFIX_CHARS

        if len(token) > PREFIX_CHARS and not token.isdigit():
            raise UsageError(
                f"token: give the token's id or its {PREFIX_CHARS}-character prefix, not the token"
            )
        return ops.suspend_token(ctx, token, (body or SuspendRequest()).resume)

    @api.post("/users/{name}/suspend", response_model=UserInfo, openapi_extra=op("suspend_user"))
    def suspend_user(
        name: str, body: SuspendRequest | None = None, ctx: Context = Depends(context)
    ) -> UserInfo:
        return ops.suspend_user(ctx, name, (body or SuspendRequest()).resume)

    return api
