"""`/v1/specs`: check a task spec (422 listing every problem with its path) and read its
JSON Schema."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from llmos.api.access import op
from llmos.api.dependencies import context
from llmos.ops import specs as ops
from llmos.ops.context import Context
from llmos.ops.specs import SpecCheck


class SpecRequest(BaseModel):
    spec: dict[str, Any] | str = Field(description="The spec: a JSON object, or its YAML text")
    source: str = Field("spec", description="What to call it in messages (its file name)")


def router(allow: Any) -> APIRouter:
    api = APIRouter(prefix="/v1/specs", tags=["specs"], dependencies=[Depends(allow)])

    @api.post("/check", response_model=SpecCheck, openapi_extra=op("check_spec"))
    def check(body: SpecRequest, ctx: Context = Depends(context)) -> SpecCheck:
        """200 with the spec as read for a valid one; 422 naming every problem (`error.problems`)."""
        return ops.check_spec(ctx, body.spec, body.source)

    @api.get("/schema", response_model=dict[str, Any], openapi_extra=op("spec_schema"))
    def schema(ctx: Context = Depends(context)) -> dict[str, Any]:
        return ops.spec_schema(ctx)

    return api
