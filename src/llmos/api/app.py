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
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmos import __version__
from llmos.api.access import PUBLIC, access_check, add_bearer_scheme, check_declared, needs
from llmos.api.errors import error_body, exception_body, status_of, validation_message
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
    app.add_middleware(
        MeasureAndLimit, metrics=metrics, max_body_bytes=runtime.config.max_body_bytes, uploads=uploads
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
        return JSONResponse(exception_body(exc, code), code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(validation_message(exc.errors()), "ValidationError", 422), 422)

    allow = access_check(policy)
    for name in ROUTERS:
        module = importlib.import_module(f"llmos.api.routers.{name}")
        app.include_router(module.router(allow))
        uploads.update(getattr(module, "UPLOAD_PATHS", ()))

    @app.get("/healthz", tags=["operations"], dependencies=[Depends(allow)], openapi_extra=needs(PUBLIC))
    async def healthz(request: Request) -> dict[str, Any]:
        """Liveness for anyone; version and memory figures only for an authenticated caller."""
        answer: dict[str, Any] = {"status": "ok"}
        if policy.warning:
            answer["warning"] = policy.warning
        if getattr(request.state, "authenticated", False):
            answer.update(version=__version__, **runtime.stats())
        return answer

    @app.get(
        "/metrics", tags=["operations"], dependencies=[Depends(allow)], openapi_extra=needs("metrics:read")
    )
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    check_declared(app)
    if policy.warning is None:
        add_bearer_scheme(app)
    return app


FORM = b"application/x-www-form-urlencoded"


class MeasureAndLimit:
    """Counts and times every request by route and status, and answers 413 to a body over
    the limit before it is read (upload routes, `uploads`, enforce their own larger limit
    as they stream the body). Every route takes a JSON body, so one labelled as a form
    (what `curl -d` sends unless told otherwise) is read as JSON rather than refused.
    Plain ASGI: `BaseHTTPMiddleware` costs a task and a stream per request, measurable at
    hundreds of requests per second."""

    def __init__(
        self, app: ASGIApp, metrics: ServeMetrics, max_body_bytes: int, uploads: set[str] | None = None
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.uploads = uploads if uploads is not None else set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"")
        if headers.get(b"content-type", b"").startswith(FORM):
            scope = {
                **scope,
                "headers": [
                    (k, b"application/json" if k == b"content-type" else v) for k, v in scope["headers"]
                ],
            }
        start = time.perf_counter()
        try:
            upload = scope["method"] == "POST" and scope["path"] in self.uploads
            if length.isdigit() and int(length) > self.max_body_bytes and not upload:
                status = 413
                message = f"request body of {int(length)} bytes is over the limit of {self.max_body_bytes}"
                await JSONResponse(error_body(message, "InputTooLarge", 413), 413)(scope, receive, send)
                return

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
            self.metrics.requests.labels(route, str(status)).inc()
