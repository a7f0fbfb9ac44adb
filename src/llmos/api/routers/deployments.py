"""`/v1/deployments`: the control plane of served names, and the data plane that calls them
(predict, feedback)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from llmos.api.access import needs, op
from llmos.api.dependencies import context
from llmos.ops import deployments as ops
from llmos.ops.context import Context
from llmos.ops.deployments import DeploymentInfo, TrafficInfo
from llmos.ops.feedback import FeedbackReceipt


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
        None,
        description="How a text classifier runs. None (default): ONNX Runtime (fp32, the same"
        " outputs) for a whole classifier on a CPU, torch on a GPU or when the export fails;"
        " onnx (ONNX Runtime, also for an adapter), int8 (dynamic quantisation) or torch",
    )
    pin: bool = Field(False, description="Never evict this deployment's adapter")


def router(allow: Any) -> APIRouter:
    api = APIRouter(prefix="/v1/deployments", tags=["deployments"], dependencies=[Depends(allow)])

    @api.get("", response_model=list[DeploymentInfo], openapi_extra=op("deployments"))
    def list_(ctx: Context = Depends(context)) -> list[DeploymentInfo]:
        return ops.deployments(ctx)

    @api.get("/{name}", response_model=DeploymentInfo, openapi_extra=op("deployment"))
    def show(name: str, ctx: Context = Depends(context)) -> DeploymentInfo:
        return ops.deployment(ctx, name)

    @api.get("/{name}/traffic", response_model=TrafficInfo, openapi_extra=op("traffic"))
    def traffic(
        name: str,
        seconds: int = Query(900, description="The window: 10 to 900 seconds"),
        ctx: Context = Depends(context),
    ) -> TrafficInfo:
        """This replica's requests, latency and batch sizes per 10-second bucket."""
        return ops.traffic(ctx, name, seconds)

    @api.post("", response_model=DeploymentInfo, openapi_extra=op("deploy"))
    def deploy(body: DeployRequest, ctx: Context = Depends(context)) -> DeploymentInfo:
        return ops.deploy(ctx, body.model, body.name, body.optimize, body.pin)

    @api.delete("/{name}", response_model=DeploymentInfo, openapi_extra=op("undeploy"))
    def undeploy(name: str, ctx: Context = Depends(context)) -> DeploymentInfo:
        return ops.undeploy(ctx, name)

    # the data plane: the serving runtime batches these, so they call it directly
    @api.post("/{name}/predict", openapi_extra=needs("predict", deployment="path:name"))
    async def predict(
        name: str, body: PredictRequest, request: Request, response: Response
    ) -> dict[str, Any]:
        texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
        target, rows = await request.app.state.runtime.predict(name, texts)
        request_id = rows[0]["request_id"]
        response.headers["X-Request-Id"] = request_id
        return {"deployment": name, "model": target.ref, "request_id": request_id, "predictions": rows}

    # whoever may call a deployment may say what its answer should have been
    @api.post(
        "/{name}/feedback",
        status_code=201,
        response_model=FeedbackReceipt,
        openapi_extra=op("submit_feedback", deployment="path:name"),
    )
    async def feedback(name: str, body: FeedbackRequest, ctx: Context = Depends(context)) -> FeedbackReceipt:
        """Acknowledged (201, with the feedback id) only once the feedback is on disk."""
        from llmos.ops.feedback import submit_feedback

        values = body.model_dump()
        values["label"] = None if body.label is None else str(body.label)
        return await asyncio.to_thread(submit_feedback, ctx, name, **values)

    return api
