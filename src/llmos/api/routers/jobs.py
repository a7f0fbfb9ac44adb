"""`/v1/jobs`: the training plane. Submitting training, evaluation and batch prediction,
listing, showing, cancelling and retrying jobs, reading and following a job's log and
progress (server-sent events), the kernel's status; in-process prediction with a
registered model (`/v1/registry/models/{ref}/predict`) and the prediction sets.

Evaluation over HTTP is a job (`POST /v1/jobs` with `kind: eval`): it takes as long as
the dataset is large, and a job can be followed, cancelled and retried; the client's
`evaluate` submits one and waits for its metrics. Prediction for a few rows answers at
once: the server loads the model in its process and keeps it for the next call.

The event stream (`GET /v1/jobs/{id}/events`) sends each event as `id`, `event` (its
type) and `data` (the event as JSON), a `: keep-alive` comment every 15 s of silence so
that proxies keep it open, and ends after the `end` event. A client that lost the
connection resumes with `Last-Event-ID` (or `?after=`): no log line is repeated or lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from llmos.api.access import op
from llmos.api.dependencies import context
from llmos.ops import jobs as ops
from llmos.ops import predict as ops_predict
from llmos.ops.context import Context
from llmos.ops.jobs import JobInfo, JobLog, KernelStatus
from llmos.ops.predict import Predictions, PredictionSetInfo

HEARTBEAT_S = 15.0
SSE = "text/event-stream"


class _Submit(BaseModel):
    model_config = {"extra": "forbid"}

    priority: int = Field(0, description="Higher runs first")
    max_attempts: int = Field(2, ge=1, description="Attempts before a crashing job fails")


class TrainRequest(_Submit):
    kind: Literal["train"]
    spec: dict[str, Any] | str = Field(description="The task spec: a JSON object, or YAML text")
    cpus: int | None = Field(None, ge=1, description="CPUs it holds and its threads (default: all)")
    gpus: int = Field(0, ge=0)
    memory_mb: int = Field(0, ge=0)
    backend: str | None = Field(None, description="local or ray (overrides the spec's backend.type)")


class EvalRequest(_Submit):
    kind: Literal["eval"]
    model: str = Field(description="NAME or NAME@V of a registered model")
    data: str = Field(description="NAME or NAME@V of a dataset")
    optimize: str | None = Field(None, description="int8 or onnx: evaluate that version too")
    cpus: int = Field(1, ge=1)


class PredictJobRequest(_Submit):
    kind: Literal["predict"]
    model: str = Field(description="NAME or NAME@V of a registered model")
    data: str = Field(description="NAME or NAME@V of the dataset to predict")
    name: str | None = Field(None, description="Prediction set name (default <model>-on-<dataset>)")
    column: str | None = Field(None, description="The input column of a single-input model")
    backend: dict[str, Any] | None = Field(None, description="local (default) or a ray backend block")
    cpus: int = Field(1, ge=1)


SubmitRequest = Annotated[TrainRequest | EvalRequest | PredictJobRequest, Field(discriminator="kind")]


class ModelPredictRequest(BaseModel):
    inputs: str | list[str | dict[str, Any]] = Field(
        description="A text, a list of texts, or rows as dicts of column values (multi-input models)"
    )
    explain: bool = Field(
        default=False, description="Add each prediction's per-token explanation (text classifiers)"
    )


def sse(events: Iterator[Any]) -> Iterator[str]:
    for event in events:
        if event.type == "heartbeat":
            yield ": keep-alive\n\n"
            continue
        yield f"id: {event.id}\nevent: {event.type}\ndata: {json.dumps(event.as_json())}\n\n"


EVENTS_DOC = (
    "Server-sent events: `event` is the type (state, progress, log, end), `data` the event as "
    "JSON (`llmos.ops.jobs.JobEvent`: state {state, attempt, max_attempts}; progress {phase, "
    "step, total, loss, samples_per_s}; log {line}; end {state, result, error, info}), `id` "
    "the cursor to resume from (Last-Event-ID); the stream ends after `end`"
)


class EventStream(StreamingResponse):
    media_type = SSE


def router(allow: Any) -> APIRouter:
    api = APIRouter(tags=["jobs"], dependencies=[Depends(allow)])
    submit_declared = {
        **op("submit_train"),
        "x-operations": ["submit_train", "submit_eval", "submit_predict"],
    }

    @api.post("/v1/jobs", status_code=201, response_model=JobInfo, openapi_extra=submit_declared)
    def submit(body: SubmitRequest, ctx: Context = Depends(context)) -> JobInfo:
        """Queue training (`kind: train` with its spec), evaluation (`eval`) or batch
        prediction (`predict`); inputs are checked first, so a bad one is refused (422,
        every problem of a spec listed) and nothing is queued."""
        common: dict[str, Any] = {"priority": body.priority, "max_attempts": body.max_attempts}
        if isinstance(body, TrainRequest):
            return ops.submit_train(
                ctx,
                body.spec,
                cpus=body.cpus,
                gpus=body.gpus,
                memory_mb=body.memory_mb,
                backend=body.backend,
                **common,
            )
        if isinstance(body, EvalRequest):
            return ops.submit_eval(
                ctx, body.model, body.data, optimize=body.optimize, cpus=body.cpus, **common
            )
        return ops.submit_predict(
            ctx,
            body.model,
            body.data,
            name=body.name,
            column=body.column,
            backend=body.backend,
            cpus=body.cpus,
            **common,
        )

    @api.get("/v1/jobs", response_model=list[JobInfo], openapi_extra=op("jobs"))
    def list_(
        state: str | None = Query(None, description="queued, running, succeeded, failed or cancelled"),
        limit: int | None = Query(None, ge=1, description="The newest N"),
        ctx: Context = Depends(context),
    ) -> list[JobInfo]:
        return ops.jobs(ctx, state, limit)

    @api.get("/v1/jobs/{id}", response_model=JobInfo, openapi_extra=op("job"))
    def show(id: int, ctx: Context = Depends(context)) -> JobInfo:
        return ops.job(ctx, id)

    @api.post("/v1/jobs/{id}/cancel", response_model=JobInfo, openapi_extra=op("cancel_job"))
    def cancel(
        id: int,
        wait: float = Query(0.0, ge=0, le=30, description="Seconds to wait for a running job to end"),
        ctx: Context = Depends(context),
    ) -> JobInfo:
        """409 when the job has already finished."""
        return ops.cancel_job(ctx, id, wait)

    @api.post("/v1/jobs/{id}/retry", response_model=JobInfo, openapi_extra=op("retry_job"))
    def retry(id: int, ctx: Context = Depends(context)) -> JobInfo:
        """Queue a failed or cancelled job again (409 for a queued, running or succeeded one)."""
        return ops.retry_job(ctx, id)

    @api.get("/v1/jobs/{id}/log", response_model=JobLog, openapi_extra=op("job_log"))
    def log(id: int, ctx: Context = Depends(context)) -> JobLog:
        return ops.job_log(ctx, id)

    @api.get(
        "/v1/jobs/{id}/events",
        response_class=EventStream,
        openapi_extra=op("job_events"),
        responses={200: {"description": EVENTS_DOC, "content": {SSE: {"schema": {"type": "string"}}}}},
    )
    def events(
        id: int,
        after: int = Query(0, ge=0, description="Resume after this event id"),
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
        ctx: Context = Depends(context),
    ) -> EventStream:
        if last_event_id and last_event_id.strip().isdigit():
            after = max(after, int(last_event_id))
        stream = ops.job_events(ctx, id, after, heartbeat=HEARTBEAT_S)  # 404 before the stream starts
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return EventStream(sse(stream), headers=headers)

    @api.get("/v1/kernel", response_model=KernelStatus, openapi_extra=op("kernel_status"))
    def kernel(ctx: Context = Depends(context)) -> KernelStatus:
        return ops.kernel_status(ctx)

    @api.get(
        "/v1/prediction-sets", response_model=list[PredictionSetInfo], openapi_extra=op("prediction_sets")
    )
    def prediction_sets(name: str | None = None, ctx: Context = Depends(context)) -> list[PredictionSetInfo]:
        return ops_predict.prediction_sets(ctx, name)

    @api.post("/v1/registry/models/{ref}/predict", response_model=Predictions, openapi_extra=op("predict"))
    def predict(ref: str, body: ModelPredictRequest, ctx: Context = Depends(context)) -> Predictions:
        """Predictions of a registered model for rows (loaded in the server, kept for the next call)."""
        inputs = [body.inputs] if isinstance(body.inputs, str) else body.inputs
        return ops_predict.predict(ctx, ref, inputs, explain=body.explain)

    return api
