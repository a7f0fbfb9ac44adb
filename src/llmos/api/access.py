"""Who may call what: every route declares the permission it needs, and one check runs
before every handler.

A route declares its permission with `openapi_extra=needs("predict", deployment="path:name")`
(the OpenAPI document shows it as `x-permission`). `create_app` refuses to build an app
with a route that declares none, so a route added later cannot slip through unprotected;
a request that somehow reaches an undeclared route is refused (403) as well.

The decision itself belongs to a `Policy` of the security layer (`llmos.security.policy`):
`create_app` builds the token policy (`build_policy`) unless it is handed another, so an
app made from Python is as closed as `llmos serve`; only `open_policy()` admits
everyone, and it says so loudly.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute

from llmos.core.errors import UsageError
from llmos.security.policy import PUBLIC, Access, Policy
from llmos.serve.errors import Forbidden


def op(name: str, deployment: str | None = None, generative: bool = False) -> dict[str, Any]:
    """The declaration of a route that performs system call `name` (`llmos.ops`): its
    permission is the operation's own, and the OpenAPI document names the operation
    (`x-operation`), which the parity test reads."""
    from llmos.ops.registry import OPERATIONS, load_all

    if name not in OPERATIONS:
        load_all()
    declared = needs(OPERATIONS[name].permission, deployment, generative)
    declared["x-operation"] = name
    return declared


def needs(permission: str, deployment: str | None = None, generative: bool = False) -> dict[str, Any]:
    """A route's declaration (`openapi_extra`): `deployment` says where the called
    deployment's name is, `path:NAME` (a path parameter), `body:FIELD` (a JSON field) or
    `session:NAME` (the assistant of the support session in path parameter NAME)."""
    declared: dict[str, Any] = {"x-permission": permission}
    if deployment:
        declared["x-deployment"] = deployment
    if generative:
        declared["x-generative"] = True
    return declared


async def _deployment_of(request: Request, where: str | None) -> str | None:
    if not where:
        return None
    kind, _, key = where.partition(":")
    if kind == "session":  # a support session's assistant (an app token names the assistant)
        return await _assistant_of_session(request, request.path_params.get(key))
    if kind == "path":
        value = request.path_params.get(key)
        return str(value) if value is not None else None
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        return None
    value = body.get(key) if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


async def _assistant_of_session(request: Request, session: Any) -> str | None:
    import asyncio

    from llmos.ops.projects import PROJECT_HEADER, project_named
    from llmos.ops.support import session_assistant

    try:
        project = project_named(request.headers.get(PROJECT_HEADER))
    except UsageError:
        return None  # the malformed header is refused later, with its own message
    return await asyncio.to_thread(session_assistant, request.app.state.runtime.store, project, session)


def access_check(policy: Policy) -> Any:
    """The dependency every route goes through."""

    async def check(request: Request) -> None:
        declared = getattr(request.scope.get("route"), "openapi_extra", None) or {}
        permission = declared.get("x-permission")
        if not permission:
            raise Forbidden(f"route {request.url.path} declares no permission, so nobody may call it")
        deployment = await _deployment_of(request, declared.get("x-deployment"))
        access = Access(permission, deployment, bool(declared.get("x-generative")))
        request.state.access = access
        await policy.allow(request, access)
        if permission != PUBLIC:
            await _in_project(request, access)

    return check


async def _in_project(request: Request, access: Access) -> None:
    """The request's project (`LLMOS-Project` header): every store call of the request
    runs in it, and the caller's role there decides (404 for an unknown project, 403
    without a role in it), for data-plane routes as for the ops routes, whose `Context`
    this is (`api.dependencies.context`). Predictions count against the project's daily
    request quota."""
    import asyncio

    from llmos.api.dependencies import actor_of
    from llmos.ops.context import Context
    from llmos.ops.projects import PROJECT_HEADER, admit_request, enter_project, project_named

    project = project_named(request.headers.get(PROJECT_HEADER))
    enter_project(project)  # this request's own context: it does not leak
    runtime = request.app.state.runtime
    ctx = Context(runtime.store, actor_of(request), project, runtime=runtime)
    if project != "default" or ctx.actor.role != "admin":
        await asyncio.to_thread(ctx.require, access.permission, access.deployment)
    request.state.context = ctx
    if access.permission == "predict":
        await asyncio.to_thread(admit_request, ctx)


def add_bearer_scheme(app: FastAPI) -> None:
    """Tell the OpenAPI document (and so /docs's "Authorize" button) that every declared,
    non-public route takes a bearer token."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "an llmos token (llmos_...)"}
        }
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if isinstance(operation, dict) and operation.get("x-permission") not in (None, PUBLIC):
                    operation["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def routes(app: FastAPI) -> list[tuple[str, set[str], Any]]:
    """Every route of `app` as (full path, methods, route), included routers flattened
    (FastAPI keeps an included router as one lazy entry of `app.routes`)."""
    from fastapi.routing import iter_route_contexts

    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = str(context.path or getattr(route, "path", repr(route)))
        found.append((path, set(context.methods or ()), route))
    return found


def check_declared(app: FastAPI) -> None:
    """Refuse to build an app with a route that does not declare its permission (only
    FastAPI's own docs pages, which describe the API and hold no workspace data, are
    public without declaring)."""
    own = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    for path, methods, route in routes(app):
        if isinstance(route, APIRoute):
            if not (route.openapi_extra or {}).get("x-permission"):
                raise UsageError(
                    f"route {','.join(sorted(methods))} {path} declares no permission: "
                    "add openapi_extra=needs(...)"
                )
        elif path not in own:
            raise UsageError(f"route {path} is not an API route, so no permission check can run on it")
