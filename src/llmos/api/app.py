"""The HTTP API (FastAPI): the control plane (datasets, specs, jobs, the model registry,
deployments, monitoring, feedback, adaptation, users and tokens, audit), the data plane
(predict, feedback) and the OpenAI-compatible routes, with health and metrics.

One router per resource under `llmos.api.routers` (FastAPI's "bigger applications"
layout). Routes are thin: each parses its input (pydantic names the field at fault in a
422), calls one `llmos.ops` function with the request's `Context`
(`dependencies.context`) and returns its result model, declared as `response_model`.
Data-plane routes call the serving runtime, which batches. Errors map to statuses in
`errors.py`. Every route depends on the policy's `allow` (each route declares its
permission, and an app with an undeclared route is refused at creation); the policy is
the security layer's token policy unless the caller passes another, so an app built in
Python is as closed as `llmos serve`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmos import __version__
from llmos.api.access import PUBLIC, access_check, add_bearer_scheme, check_declared, needs
from llmos.api.errors import (
    ErrorBody,
    error_body,
    error_of,
    status_of,
    validation_message,
    validation_param,
)
from llmos.core.errors import LlmosError
from llmos.ops.audit import record_event
from llmos.security.access import Policy
from llmos.serve.metrics import ServeMetrics
from llmos.serve.runtime import ServeRuntime

# modules of llmos.api.routers, each with `router(allow)`
ROUTERS = (
    "deployments",
    "datasets",
    "specs",
    "registry",
    "jobs",
    "openai",
    "users",
    "audit",
    "keys",
    "feedback",
    "monitoring",
    "adaptation",
    "schedules",
    "console",
    "support",
    "knowledge",
    "recommend",
    "watches",
    "projects",
    "tracking",
)


def create_app(runtime: ServeRuntime, policy: Policy | None = None) -> FastAPI:
    """The app over `runtime`'s workspace; `policy` defaults to the token policy
    (`llmos.security.policy.build_policy`): pass `open_policy()` for an open server."""
    import importlib

    if policy is None:
        from llmos.security.policy import build_policy

        policy = build_policy(runtime.store)
    if policy.warning:
        logging.getLogger("llmos.serve").warning("WARNING: %s", policy.warning)
    metrics = ServeMetrics(runtime)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(runtime.close)  # in-flight and queued requests finish first

    app = FastAPI(
        title="llmos",
        version=__version__,
        description="The control plane, data plane and OpenAI-compatible routes of an llmos workspace.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime

    uploads: set[str] = set()  # routes that read large bodies themselves, under their own limit
    public: set[str] = set()  # paths anyone may call: no flood check before routing
    app.add_middleware(
        MeasureAndLimit,
        metrics=metrics,
        max_body_bytes=runtime.config.max_body_bytes,
        uploads=uploads,
        policy=policy,
        public=public,
        refusal_delay_s=runtime.config.refusal_delay_s,
    )

    @app.exception_handler(LlmosError)
    async def llmos_error(request: Request, exc: LlmosError) -> JSONResponse:
        code = status_of(exc)
        access = getattr(request.state, "access", None)
        if access is not None and access.permission.endswith(":write") and code not in (401, 403):
            # a change that was allowed but failed: the audit log keeps the attempt
            target, detail = (
                f"{request.method} {request.url.path}",
                {"status": code, "error": exc.message[:300]},
            )
            await asyncio.to_thread(record_event, runtime.store, "http.change", target, "failed", detail)
        headers = None
        if code == 429:
            headers = {"Retry-After": str(max(1, round(getattr(exc, "retry_after", 1))))}
        elif code == 401:
            headers = {"WWW-Authenticate": 'Bearer realm="llmos"'}
        return JSONResponse(error_of(exc), code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if errors and errors[0].get("type") == "json_invalid":
            code, param = "invalid_json", None
        else:
            code, param = "invalid_value", validation_param(errors)
        body = error_body(validation_message(errors), "ValidationError", 422, param, code)
        return JSONResponse(body, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Unknown routes (404), a method a route does not take (405): OpenAI's shape too."""
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}; see /docs for the API"
        elif exc.status_code == 405:
            message = f"{request.url.path} does not take {request.method}"
        else:
            message = str(exc.detail)
        code = None
        if exc.status_code == 400 and "parsing the body" in message:  # bytes that are no text
            message, code = "the request body is not valid JSON (it cannot be decoded)", "invalid_json"
        body = error_body(message, "HTTPError", exc.status_code, code=code)
        return JSONResponse(body, exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def crashed(_request: Request, exc: Exception) -> JSONResponse:
        """A bug: still an answer in OpenAI's shape (the traceback goes to the log)."""
        logging.getLogger("llmos.serve").exception("unexpected error", exc_info=exc)
        message = f"internal error ({type(exc).__name__}); the server log has the details"
        return JSONResponse(error_body(message, "InternalError", 500), 500)

    allow = access_check(policy)
    for name in ROUTERS:
        module = importlib.import_module(f"llmos.api.routers.{name}")
        app.include_router(module.router(allow))
        uploads.update(getattr(module, "UPLOAD_PATHS", ()))

    @app.get(
        "/healthz",
        tags=["operations"],
        dependencies=[Depends(allow)],
        openapi_extra=needs(PUBLIC),
        responses={503: {"description": "Not serving: `problems` says why (a dead engine, shutting down)"}},
    )
    async def healthz(request: Request, response: Response) -> dict[str, Any]:
        """Liveness for anyone (503 with `problems` when the server cannot serve); version
        and memory figures only for an authenticated caller."""
        problems = runtime.problems()
        answer: dict[str, Any] = {"status": "error" if problems else "ok"}
        if problems:
            answer["problems"] = problems
            response.status_code = 503
        if policy.warning:
            answer["warning"] = policy.warning
        if getattr(request.state, "authenticated", False):
            answer.update(version=__version__, **runtime.stats())
        return answer

    @app.get(
        "/metrics",
        tags=["operations"],
        dependencies=[Depends(allow)],
        openapi_extra=needs("metrics:read"),
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    check_declared(app)
    public.update(_public_paths(app))
    declare_error_statuses(app)
    if policy.warning is None:
        add_bearer_scheme(app)
    return app


DESCRIPTIONS = {
    400: "A request the server refuses: an unsupported parameter, too many tokens",
    401: "No usable token",
    403: "The token's role or app scope does not allow this",
    404: "No such resource (or route)",
    409: "A state conflict",
    413: "Body, inputs or texts over the server's limits",
    422: "Invalid input; the message names the field",
    429: "A queue is full or the token is over its rate limit or quota (Retry-After)",
    500: "A bug",
    503: "The model cannot be loaded or the server is stopping",
    504: "No answer within the server's timeout",
}


def error_statuses(method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation of the OpenAPI document can answer, from its
    declaration: every route may fail (500) and refuse a malformed query or body, or a
    change the workspace's state does not allow (422); a non-public one may refuse its
    caller (401, 403) and rate-limit it (429); one with a parameter (path or query: both
    name things, such as `?deployment=`), a body or a deployment may not find what it
    names (404); one that
    takes a body may find it too large (413) or refuse it (400); a change may conflict (409); a
    data-plane route (permission `predict`) may also find its queue full (429), its model
    unloadable or the server stopping (503), or time out (504)."""
    statuses = {500}
    if operation.get("parameters") or "requestBody" in operation or method.upper() not in ("GET", "HEAD"):
        statuses.add(422)
    if operation.get("x-permission") not in (None, PUBLIC):
        statuses |= {401, 403, 429}
    if "requestBody" in operation:
        statuses |= {400, 404, 413}  # a body names things too (a model to deploy)
    if operation.get("parameters") or operation.get("x-deployment"):
        statuses.add(404)
    if method.upper() not in ("GET", "HEAD"):
        statuses.add(409)
    if operation.get("x-permission") == "predict":  # the data plane
        statuses |= {400, 429, 503, 504}
    return statuses


def declare_error_statuses(app: FastAPI) -> None:
    """Add every error status each operation can answer to the OpenAPI document, with the
    error body's schema (so routes added by any router get them). A status a route
    declares itself (`responses=`) is left as declared, except FastAPI's own 422 schema,
    which is not what this API answers."""
    build = app.openapi
    done: list[int] = []

    def openapi() -> dict[str, Any]:
        schema = build()
        if id(schema) in done:
            return schema
        body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(body.pop("$defs", {}))
        components["ErrorBody"] = body
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        for operations in schema.get("paths", {}).values():
            for method, operation in operations.items():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                for status in sorted(error_statuses(method, operation)):
                    given = operation["responses"].get(str(status))
                    if given is not None and status != 422:
                        continue  # the route's own declaration of this status
                    operation["responses"][str(status)] = {
                        "description": DESCRIPTIONS[status],
                        "content": content,
                    }
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        done.append(id(schema))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


FORM = b"application/x-www-form-urlencoded"
MAX_HELD = 2048  # refusals held back at once; past it they are answered at once


def _public_paths(app: FastAPI) -> set[str]:
    """Paths of the routes that declare `PUBLIC` and of FastAPI's own docs pages; a path
    with parameters as its prefix up to the first one, ending in `{` (`/console/{`)."""
    from llmos.api.access import routes

    own = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    found = {p for p in own if p}
    for path, _methods, route in routes(app):
        if (getattr(route, "openapi_extra", None) or {}).get("x-permission") == PUBLIC:
            found.add(path.split("{", 1)[0] + "{" if "{" in path else path)
    return found


class MeasureAndLimit:
    """Counts and times every request by route and status, gives every answer an
    `x-request-id`, and answers 413 to a body over the limit before it is read (upload
    routes, `uploads`, enforce their own larger limit as they stream the body). Every
    route takes a JSON body, so one labelled as a form (what `curl -d` sends unless told
    otherwise), or not labelled at all, is read as JSON rather than refused.
    A request from an address (or with a token prefix) in a burst of failed
    authentications is answered 429 here, before routing, body or database
    (`Policy.refuse_early`): a flood of wrong tokens then costs the server a dictionary
    look-up per request, and valid clients keep their latency (`benchmarks/bench_flood.py`);
    a client that keeps knocking gets its 429 `refusal_delay_s` later (up to `MAX_HELD`
    held at once), so a keep-alive flood cannot take the event loop for itself.
    Plain ASGI: `BaseHTTPMiddleware` costs a task and a stream per request, measurable at
    hundreds of requests per second."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: ServeMetrics,
        max_body_bytes: int,
        uploads: set[str] | None = None,
        policy: Policy | None = None,
        public: set[str] | None = None,
        refusal_delay_s: float = 0.0,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.uploads = uploads if uploads is not None else set()
        self.policy = policy
        self.public = public if public is not None else set()
        self._prefixes: tuple[str, ...] | None = None
        self.refusal_delay_s = refusal_delay_s
        self.held = 0  # refusals being held back now

    def _is_public(self, path: str) -> bool:
        if self._prefixes is None:  # `public` is filled once the routes are in
            self._prefixes = tuple(p[:-1] for p in self.public if p.endswith("{"))
        return path in self.public or path.startswith(self._prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, bytes_out = 500, 0
        state = scope.setdefault("state", {})  # shared by the copies of `scope` below
        headers = dict(scope["headers"])
        if self.policy is not None and not self._is_public(scope["path"]):
            client = scope.get("client")
            authorization = headers.get(b"authorization")
            refusal = self.policy.refuse_early(
                client[0] if client else "", authorization.decode("latin-1") if authorization else None
            )
            if refusal is not None:
                await self._refuse(refusal, scope, receive, send)
                return
        length = headers.get(b"content-length", b"")
        if headers.get(b"content-type", b"").startswith(FORM):
            scope = {
                **scope,
                "headers": [
                    (k, b"application/json" if k == b"content-type" else v) for k, v in scope["headers"]
                ],
            }
        elif b"content-type" not in headers and (
            length not in (b"", b"0") or b"transfer-encoding" in headers
        ):
            # a body without a type: read as JSON too (so bad JSON is named as such)
            scope = {**scope, "headers": [*scope["headers"], (b"content-type", b"application/json")]}
        start = time.perf_counter()

        async def send_status(message: Message) -> None:
            """Note the status; give every answer an `x-request-id` (routes that log their
            answers set their own: the id feedback names)."""
            nonlocal status, bytes_out
            if message["type"] == "http.response.body":
                bytes_out += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", f"req-{uuid.uuid4().hex[:24]}".encode()))
                    message = {**message, "headers": headers}
            await send(message)

        try:
            upload = scope["method"] == "POST" and scope["path"] in self.uploads
            if length.isdigit() and int(length) > self.max_body_bytes and not upload:
                status = 413
                message = f"request body of {int(length)} bytes is over the limit of {self.max_body_bytes}"
                await JSONResponse(error_body(message, "InputTooLarge", 413), 413)(
                    scope, receive, send_status
                )
                return
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
            self.metrics.requests.labels(route, str(status)).inc()
        if self.policy is not None:  # answered (not after an exception)
            await self.policy.answered(state, status, bytes_out)

    async def _refuse(self, refusal: LlmosError, scope: Scope, receive: Receive, send: Send) -> None:
        """429 with Retry-After, counted under the route label `refused` (raw ASGI messages:
        the cheapest answer there is)."""
        if getattr(refusal, "persistent", False) and self.refusal_delay_s and self.held < MAX_HELD:
            self.held += 1  # a sleeping coroutine: no CPU, and the flood's connection waits
            try:
                await asyncio.sleep(self.refusal_delay_s)
            finally:
                self.held -= 1
        code = status_of(refusal)
        wait = str(max(1, round(getattr(refusal, "retry_after", 1))))
        body = json.dumps(error_of(refusal)).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", wait.encode()),
        ]
        await send({"type": "http.response.start", "status": code, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.metrics.requests.labels("refused", str(code)).inc()
