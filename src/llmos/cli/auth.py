"""`llmos auth init`, `llmos auth user add|list|remove`, `llmos auth token create|list|revoke`.

Locally the CLI is the admin of its own workspace: these commands need no token (whoever
can open the workspace's files already holds everything in it). With `--url` they ask a
server (`/v1/users`, `/v1/tokens`) with an admin's token. `auth init` is local only on
purpose: it creates the first admin of a workspace that has none, so no token could
authorise it over HTTP.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from llmos.cli.output import err, out, print_json, table
from llmos.cli.state import STATE

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
app = typer.Typer(help="Users, roles and API tokens of `llmos serve`.", no_args_is_help=True)
users = typer.Typer(help="Add, list and remove users.", no_args_is_help=True)
tokens = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
app.add_typer(users, name="user")
app.add_typer(tokens, name="token")

ROLE_HELP = "admin, developer (data, train, deploy), viewer (read only) or app (named deployments only)."


def _show_token(info: dict[str, Any], json_out: bool) -> None:
    if json_out:
        print_json(info)
        return
    out.print(info["token"])
    expires = info["expires_at"] or "never"
    err.print(
        f"token {info['prefix']}… for {info['user']} (role {info['role']}, expires {expires}): "
        "shown only now, store it safely"
    )


@app.command("init")
def init(
    name: Annotated[str, typer.Option("--name", help="The first admin's user name.")] = "admin",
    json_out: JsonOpt = False,
) -> None:
    """Create the first admin and print its token once (refused when an admin exists)."""
    from llmos.ops.users import NewToken
    from llmos.security.identities import init_admin

    ws = STATE.local("auth init", "it creates the first admin, which no token can authorise yet")
    ws.init()
    secret, info = init_admin(ws.store, name)
    _show_token(NewToken(**info, token=secret).as_json(), json_out)


@users.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option("--role", help=ROLE_HELP)] = "developer",
    json_out: JsonOpt = False,
) -> None:
    """Add a user (then give it a token with `llmos auth token create --user NAME`)."""
    info = STATE.backend.add_user(name, role)
    if json_out:
        print_json(info.as_json())
    else:
        out.print(f"added user {info.name} (role {info.role})")


@users.command("list")
def user_list(json_out: JsonOpt = False) -> None:
    """Users and how many usable tokens each holds."""
    rows = [u.as_json() for u in STATE.backend.users()]
    if json_out:
        print_json(rows)
        return
    table(None, ["user", "role", "tokens", "created"], [
        (r["name"], r["role"], r["active_tokens"], r["created_at"]) for r in rows
    ])  # fmt: skip


@users.command("remove")
def user_remove(name: Annotated[str, typer.Argument(help="User name.")], json_out: JsonOpt = False) -> None:
    """Remove a user; its tokens stop working at once (the last admin cannot be removed)."""
    info = STATE.backend.remove_user(name)
    if json_out:
        print_json(info.as_json())
    else:
        out.print(f"removed user {info.name}; its tokens are revoked")


@tokens.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", help="The user the token speaks for.")],
    role: Annotated[str | None, typer.Option("--role", help=ROLE_HELP + " Default: the user's role.")] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="Lifetime such as 30d, 12h, 90m (default: none).")
    ] = None,
    deployment: Annotated[
        list[str] | None,
        typer.Option("--deployment", help="A deployment an app token may call (repeatable)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    _show_token(STATE.backend.create_token(user, role, expires, deployment).as_json(), json_out)


@tokens.command("list")
def token_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Tokens (prefix, user, role, state, expiry, last use); never the tokens themselves."""
    rows = [t.as_json() for t in STATE.backend.tokens(user)]
    if json_out:
        print_json(rows)
        return
    table(None, ["id", "prefix", "user", "role", "deployments", "state", "expires", "last used"], [
        (r["id"], r["prefix"], r["user"], r["role"], ",".join(r["deployments"]) or "-", r["state"],
         r["expires_at"] or "never", r["last_used_at"] or "never")
        for r in rows
    ])  # fmt: skip


@tokens.command("revoke")
def token_revoke(
    token: Annotated[str, typer.Argument(help="The token's id, its prefix, or the token itself.")],
    json_out: JsonOpt = False,
) -> None:
    """Revoke a token; a server refuses it from the next request."""
    info = STATE.backend.revoke_token(token)
    if json_out:
        print_json(info.as_json())
    else:
        out.print(f"revoked token {info.id} ({info.prefix}…) of {info.user}")


@tokens.command("suspend")
def token_suspend(
    token: Annotated[str, typer.Argument(help="The token's id, its prefix, or the token itself.")],
    resume: Annotated[bool, typer.Option("--resume", help="Give the token back.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Suspend a token (refused from the next request) or, with --resume, give it back."""
    info = STATE.backend.suspend_token(token, resume)
    if json_out:
        print_json(info.as_json())
    else:
        out.print(f"{'resumed' if resume else 'suspended'} token {info.id} ({info.prefix}…) of {info.user}")


@users.command("suspend")
def user_suspend(
    name: Annotated[str, typer.Argument(help="The user.")],
    resume: Annotated[bool, typer.Option("--resume", help="Give the user its tokens back.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Suspend a user (every token it holds is refused) or, with --resume, give them back."""
    info = STATE.backend.suspend_user(name, resume)
    if json_out:
        print_json(info.as_json())
    else:
        out.print(f"{'resumed' if resume else 'suspended'} user {info.name}")
