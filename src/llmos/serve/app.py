"""The HTTP API (FastAPI): deployments, predictions, the OpenAI-compatible routes,
health and metrics. Routes are thin: each parses its body (pydantic names the field at
fault in a 422), calls one `ServeRuntime` or store function and returns JSON.

Errors are `LlmosError`s mapped to status codes in one table: unknown deployment 404,
bad input 422, too large 413, queue full 429 (with Retry-After), model failing to load
503, timeout 504. Every route depends on `Policy.allow`, the one place where the
security layer's policy decides (see `access.py`: each route declares its permission,
and an app with an undeclared route is refused at creation). 401 answers carry
`WWW-Authenticate: Bearer`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmos import __version__
from llmos.core.errors import DataError, LlmosError, NotFoundError, SpecError, UsageError
from llmos.serve.access import PUBLIC, Policy, access_check, add_bearer_scheme, check_declared, needs
from llmos.serve.errors import (
    Forbidden,
    InputTooLarge,
    ModelUnavailable,
    RateLimited,
    RequestBlocked,
    RequestTimeout,
    ServerBusy,
    Unauthenticated,
)
from llmos.serve.metrics import ServeMetrics
from llmos.serve.openai_api import build_router
from llmos.serve.runtime import ServeRuntime, deployment_info
from llmos.store.audit import record

STATUS: list[tuple[type[LlmosError], int]] = [
    (Unauthenticated, 401),
    (Forbidden, 403),
    (RateLimited, 429),
    (RequestBlocked, 400),
    (NotFoundError, 404),
    (InputTooLarge, 413),
    (ServerBusy, 429),
    (ModelUnavailable, 503),
    (RequestTimeout, 504),
    (UsageError, 422),
    (DataError, 422),
    (SpecError, 422),
]


def status_of(exc: LlmosError) -> int:
    return next((code for cls, code in STATUS if isinstance(exc, cls)), 500)


def error_body(message: str, kind: str, code: int) -> dict[str, Any]:
    """OpenAI's error shape, so its clients show the message."""
    return {"error": {"message": message, "type": kind, "code": code}}


class PredictRequest(BaseModel):
    inputs: str | list[str | dict[str, Any]] = Field(
        description="A text, a list of texts, or rows as dicts of column values (multi-input models)"
    )


class FeedbackRequest(BaseModel):
    request_id: str = Field(description="The request_id a prediction returned (OpenAI routes: their id)")
    index: int | None = Field(None, ge=0, description="Which input of a multi-input request")
    label: str | int | None = Field(None, description="The correct label")
    rating: int | None = Field(None, ge=1, le=5, description="A rating of the answer, 1 (bad) to 5 (good)")
    answer: str | None = Field(None, description="The corrected answer (generation deployments)")
    new_label: bool = Field(False, description="Accept a label the model does not know yet (a new intent)")


class DeployRequest(BaseModel):
    model: str = Field(description="NAME[@V] of a registered model, or a zoo alias")
    name: str = Field(description="The deployment name")
    optimize: str | None = Field(
        None, description="int8 (dynamic quantisation) or onnx (ONNX Runtime, fp32) for a text classifier"
    )
    pin: bool = Field(False, description="Never evict this deployment's adapter")


def create_app(runtime: ServeRuntime, policy: Policy | None = None) -> FastAPI:
    policy = policy or Policy()
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
        description="Deployments, predictions and OpenAI-compatible routes of an llmos workspace.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime

    app.add_middleware(MeasureAndLimit, metrics=metrics, max_body_bytes=runtime.config.max_body_bytes)

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
            await asyncio.to_thread(record, runtime.store, "http.change", target, "failed", detail)
        headers = None
        if code == 429:
            headers = {"Retry-After": str(max(1, round(getattr(exc, "retry_after", 1))))}
        elif code == 401:
            headers = {"WWW-Authenticate": 'Bearer realm="llmos"'}
        return JSONResponse(error_body(exc.message, type(exc).__name__, code), code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(validation_message(exc.errors()), "ValidationError", 422), 422)

    allow = access_check(policy)
    app.include_router(build_router(allow))
    app.include_router(deployment_router(allow))

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
    the limit before it is read. Every route takes a JSON body, so one labelled as a form
    (what `curl -d` sends unless told otherwise) is read as JSON rather than refused.
    Plain ASGI: `BaseHTTPMiddleware` costs a task and a stream per request, measurable at
    hundreds of requests per second."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

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
            if length.isdigit() and int(length) > self.max_body_bytes:
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


def validation_message(errors: Any) -> str:
    """One line naming the field of the first problem (and how many more there are)."""
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "")
        text = f"the request body is not valid JSON ({reason})"
    else:
        text = f"{'.'.join(loc) or 'body'}: {first.get('msg', 'invalid')}"
    more = len(errors) - 1
    return text + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def deployment_router(allow: Any) -> APIRouter:
    router = APIRouter(prefix="/v1/deployments", tags=["deployments"], dependencies=[Depends(allow)])

    @router.get("", openapi_extra=needs("deployments:read"))
    async def list_(request: Request) -> list[dict[str, Any]]:
        from llmos.store.deployments import list_deployments

        rows = await asyncio.to_thread(list_deployments, request.app.state.runtime.store)
        return [deployment_info(r) for r in rows]

    @router.get("/{name}", openapi_extra=needs("deployments:read"))
    async def show(name: str, request: Request) -> dict[str, Any]:
        from llmos.store.deployments import get_deployment

        runtime = request.app.state.runtime
        return runtime.describe(await asyncio.to_thread(get_deployment, runtime.store, name))

    @router.post("", openapi_extra=needs("deployments:write"))
    async def deploy(body: DeployRequest, request: Request) -> dict[str, Any]:
        from llmos.serve.targets import deploy

        runtime = request.app.state.runtime
        row = await asyncio.to_thread(deploy, runtime.store, body.model, body.name, body.optimize, body.pin)
        return deployment_info(row)

    @router.delete("/{name}", openapi_extra=needs("deployments:write"))
    async def undeploy(name: str, request: Request) -> dict[str, Any]:
        from llmos.serve.targets import undeploy

        runtime = request.app.state.runtime
        row = await asyncio.to_thread(undeploy, runtime.store, name, runtime.pager)
        return deployment_info(row)

    @router.post("/{name}/predict", openapi_extra=needs("predict", deployment="path:name"))
    async def predict(
        name: str, body: PredictRequest, request: Request, response: Response
    ) -> dict[str, Any]:
        texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
        target, rows = await request.app.state.runtime.predict(name, texts)
        request_id = rows[0]["request_id"]
        response.headers["X-Request-Id"] = request_id
        return {"deployment": name, "model": target.ref, "request_id": request_id, "predictions": rows}

    # whoever may call a deployment may say what its answer should have been
    @router.post("/{name}/feedback", status_code=201, openapi_extra=needs("predict", deployment="path:name"))
    async def feedback(name: str, body: FeedbackRequest, request: Request) -> dict[str, Any]:
        """Acknowledged (201, with the feedback id) only once the feedback is on disk."""
        from llmos.serve.feedback import FeedbackItem, submit_feedback

        runtime = request.app.state.runtime
        values = body.model_dump()
        values["label"] = None if body.label is None else str(body.label)
        item = FeedbackItem(**values)
        return await asyncio.to_thread(submit_feedback, runtime.store, name, item, runtime.request_log.flush)

    return router
