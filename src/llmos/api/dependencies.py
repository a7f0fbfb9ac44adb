"""The `Context` of a request: the workspace of the server, the token's user as actor."""

from __future__ import annotations

from fastapi import Request

from llmos.ops.context import Actor, Context


def actor_of(request: Request) -> Actor:
    principal = getattr(request.state, "principal", None)
    if principal is None:  # an open server (`--insecure-no-auth`): everyone is anonymous
        return Actor.anonymous()
    return Actor(principal.user, principal.role, tuple(principal.deployments), principal.prefix)


def context(request: Request) -> Context:
    """FastAPI dependency: `ctx: Context = Depends(context)`."""
    found = getattr(request.state, "context", None)  # made by the access check, in the project
    if found is not None:
        return found
    runtime = request.app.state.runtime
    return Context(runtime.store, actor_of(request), runtime=runtime)
