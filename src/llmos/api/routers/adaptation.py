"""Adaptation: `/v1/deployments/{name}/adapt` (queue it; `wait` to answer once it has
finished), `/adapt/plan` (what it would use), `/adapt/history`, `/rollback`, and
`/v1/labels/suggest` (active learning)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from llmos.api.access import op
from llmos.api.dependencies import context
from llmos.ops import adaptation as ops
from llmos.ops.adaptation import AdaptJob, AdaptPlan, Decision, LabelSuggestions
from llmos.ops.context import Context


class AdaptSettingsBody(BaseModel):
    """`AdaptSettings` fields; a missing one takes its default. Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
    data: str | None = Field(None, description="Learn from this dataset's labelled rows instead of feedback")
    epochs: int | None = Field(None, ge=1)
    replay_ratio: float | None = Field(None, ge=0)
    ewc: float | None = Field(None, ge=0)
    lwf: float | None = Field(None, ge=0)
    holdout: float | None = Field(None, gt=0, lt=1)
    tolerance: float | None = None
    new_labels: bool | None = None
    lr: float | None = Field(None, gt=0)
    seed: int | None = None

    def settings(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude={"data", "cpus", "wait"}).items() if v is not None}


class AdaptRequest(AdaptSettingsBody):
    cpus: int = Field(1, ge=1, description="CPUs the job holds")
    wait: bool = Field(False, description="Answer once the job has finished (with its decision)")


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", description="Why (recorded)")


class SuggestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str = Field(description="NAME[@V] of a dataset of unlabelled rows")
    model: str = Field(description="NAME[@V] of the classifier that scores them")
    k: int = Field(50, ge=1, description="How many rows to pick")
    strategy: str = Field("margin", description="margin or entropy")


def router(allow: Any) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["adaptation"], dependencies=[Depends(allow)])

    @api.post(
        "/deployments/{name}/adapt",
        response_model=AdaptJob,
        openapi_extra=op("submit_adapt", deployment="path:name"),
    )
    def submit(name: str, body: AdaptRequest | None = None, ctx: Context = Depends(context)) -> AdaptJob:
        """No new feedback: 422 and nothing queued. `wait` holds the request until the job ends."""
        body = body or AdaptRequest()
        return ops.submit_adapt(ctx, name, data=body.data, cpus=body.cpus, wait=body.wait, **body.settings())

    @api.post("/deployments/{name}/adapt/plan", response_model=AdaptPlan, openapi_extra=op("plan_adapt"))
    def plan(name: str, body: AdaptSettingsBody | None = None, ctx: Context = Depends(context)) -> AdaptPlan:
        body = body or AdaptSettingsBody()
        return ops.plan_adapt(ctx, name, data=body.data, **body.settings())

    @api.get(
        "/deployments/{name}/adapt/history", response_model=list[Decision], openapi_extra=op("adapt_history")
    )
    def history(name: str, ctx: Context = Depends(context)) -> list[Decision]:
        return ops.adapt_history(ctx, name)

    @api.post(
        "/deployments/{name}/rollback",
        response_model=Decision,
        openapi_extra=op("rollback", deployment="path:name"),
    )
    def rollback(name: str, body: RollbackRequest | None = None, ctx: Context = Depends(context)) -> Decision:
        return ops.rollback(ctx, name, (body or RollbackRequest()).reason)

    @api.post("/labels/suggest", response_model=LabelSuggestions, openapi_extra=op("suggest_labels"))
    def suggest(body: SuggestRequest, ctx: Context = Depends(context)) -> LabelSuggestions:
        """The chosen rows come back in `records`; nothing is written on the server."""
        return ops.suggest_labels(ctx, body.dataset, body.model, body.k, body.strategy)

    return api
