"""`/v1/registry`: registered model versions (spec, lineage, metrics, artifacts), their
report files (the confusion-matrix PNG, metrics.json, ...) and the model zoo.
(`/v1/models` is OpenAI's list of deployments, as OpenAI clients expect.)"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from llmos.api.access import op
from llmos.api.dependencies import context
from llmos.ops import models as ops
from llmos.ops.context import Context
from llmos.ops.models import Lineage, ModelFile, ModelInfo, ZooModel

BINARY = {"schema": {"type": "string", "format": "binary"}}
FILE_TYPES = ("image/png", "application/json", "application/yaml", "application/octet-stream")


class ShareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: str = Field(description="The project to publish the model version to, read-only")


def router(allow: Any) -> APIRouter:
    api = APIRouter(prefix="/v1/registry", tags=["registry"], dependencies=[Depends(allow)])

    @api.get("/models", response_model=list[ModelInfo], openapi_extra=op("models"))
    def list_(
        name: str | None = None,
        limit: int | None = Query(None, description="At most this many versions (a page)"),
        offset: int = Query(0, description="Skip this many versions first"),
        ctx: Context = Depends(context),
    ) -> list[ModelInfo]:
        return ops.models(ctx, name, limit, offset)

    @api.get("/models/{ref}", response_model=ModelInfo, openapi_extra=op("model"))
    def show(ref: str, ctx: Context = Depends(context)) -> ModelInfo:
        return ops.model(ctx, ref)

    @api.post("/models/{ref}/share", response_model=ModelInfo, openapi_extra=op("share_model"))
    def share(ref: str, body: ShareRequest, ctx: Context = Depends(context)) -> ModelInfo:
        return ops.share_model(ctx, ref, body.project)

    @api.get("/models/{ref}/lineage", response_model=Lineage, openapi_extra=op("lineage"))
    def lineage(ref: str, ctx: Context = Depends(context)) -> Lineage:
        return ops.lineage(ctx, ref)

    @api.get("/models/{ref}/files", response_model=list[ModelFile], openapi_extra=op("model_files"))
    def files(ref: str, ctx: Context = Depends(context)) -> list[ModelFile]:
        return ops.model_files(ctx, ref)

    @api.get(
        "/models/{ref}/files/{path:path}",
        response_class=Response,
        responses={200: {"description": "The file", "content": {t: BINARY for t in FILE_TYPES}}},
        openapi_extra=op("model_file"),
    )
    def file(ref: str, path: str, ctx: Context = Depends(context)) -> Response:
        return Response(ops.model_file(ctx, ref, path), media_type=ops.media_type(path))

    @api.get("/zoo", response_model=list[ZooModel], openapi_extra=op("zoo"))
    def zoo(ctx: Context = Depends(context)) -> list[ZooModel]:
        return ops.zoo(ctx)

    return api
