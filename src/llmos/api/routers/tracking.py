"""`/v1/registry/models/{ref}/metrics`: a run's per-step metrics; `.../export`: to MLflow."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from llmos.api.access import op
from llmos.api.dependencies import context
from llmos.ops import tracking as ops
from llmos.ops.context import Context
from llmos.ops.tracking import ExportedRun, RunMetrics


class ExportRequest(BaseModel):
    to: str = Field(description="MLflow tracking URI, or tensorboard:///FOLDER")


def router(allow: Any) -> APIRouter:
    api = APIRouter(prefix="/v1/registry", tags=["registry"], dependencies=[Depends(allow)])

    @api.get("/models/{ref}/metrics", response_model=RunMetrics, openapi_extra=op("run_metrics"))
    def metrics(
        ref: str,
        names: str | None = Query(None, description="Comma-separated metric names (default: all)"),
        ctx: Context = Depends(context),
    ) -> RunMetrics:
        return ops.run_metrics(ctx, ref, [n for n in names.split(",") if n] if names else None)

    @api.post("/models/{ref}/export", response_model=ExportedRun, openapi_extra=op("export_run"))
    def export(ref: str, body: ExportRequest, ctx: Context = Depends(context)) -> ExportedRun:
        return ops.export_run(ctx, ref, body.to)

    return api
