"""`POST /v1/deployments/{name}/recommend`: top-k items from a deployed recommender."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from llmos.api.access import op
from llmos.api.dependencies import context
from llmos.ops import recommend as ops
from llmos.ops.context import Context
from llmos.ops.recommend import MAX_K, Recommendations


class RecommendRequest(BaseModel):
    user: str | None = Field(None, description="The user id; unknown users get the cold-start answer")
    items: list[str] = Field(default_factory=list, description="Recent items of an anonymous session")
    k: int = Field(10, ge=1, le=MAX_K, description="How many items")
    exclude: list[str] = Field(default_factory=list, description="Items never to return")
    filters: dict[str, str | list[str]] | None = Field(
        None, description="Item-table column -> the value(s) an item must have"
    )


def router(allow: Any) -> APIRouter:
    api = APIRouter(prefix="/v1/deployments", tags=["recommendations"], dependencies=[Depends(allow)])

    @api.post(
        "/{name}/recommend",
        response_model=Recommendations,
        openapi_extra=op("recommend", deployment="path:name"),
    )
    def recommend(name: str, body: RecommendRequest, ctx: Context = Depends(context)) -> Recommendations:
        return ops.recommend(ctx, name, body.user, body.items, body.k, body.exclude, body.filters)

    return api
