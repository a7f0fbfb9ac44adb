"""Adaptation and active learning: queue `adapt` as a kernel job (or run it and wait),
see what it would use, the deployment's decisions, roll back, and pick rows worth
labelling. The logic is `llmos.adapt`; permissions: `adapt` to change (submit, rollback,
suggest, which runs the model), `feedback:read` to look (history, plan).

`AdaptJob` is the job as these calls return it, with the fields of the jobs' summary;
it stands in for the jobs layer's own result model until that one lands.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from llmos.ops.context import Context
from llmos.ops.registry import operation
from llmos.ops.results import Result, Timestamp


class AdaptJob(Result):
    id: int
    kind: str
    name: str
    state: str = Field(description="queued, running, succeeded, failed or cancelled")
    priority: int = 0
    resources: dict[str, Any] = Field(default_factory=dict)
    attempts: int = 0
    max_attempts: int = 1
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = Field(None, description="The gate's decision, once succeeded")
    error: str | None = None
    created_at: Timestamp | None = None
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None


class AdaptResult(Result):
    job: int
    deployment: str
    parent: str = Field(description="The model the deployment served")
    candidate: str = Field(description="The adapted model version")
    decision: str = Field(description="promote or reject")
    reasons: list[str]
    metrics: dict[str, Any] = Field(default_factory=dict)
    lineage: dict[str, Any] = Field(default_factory=dict)


class AdaptPlan(Result):
    deployment: str
    model: str
    rows: int
    train: int
    held_out: int
    labels: dict[str, int]


class Decision(Result):
    id: int
    decision: str = Field(description="promote, reject or rollback")
    model: str = Field(description="The candidate (promote, reject) or the model returned to (rollback)")
    parent: str | None = None
    reasons: list[str] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    last_feedback_id: int | None = None
    job: int | None = None
    actor: str = ""
    at: Timestamp


class SuggestedRow(Result):
    row: int
    text: Any
    predicted: str
    uncertainty: float


class LabelSuggestions(Result):
    dataset: str
    model: str
    strategy: str
    candidates: int = Field(description="Unlabelled rows considered")
    rows: list[SuggestedRow]
    label_column: str
    records: list[dict[str, Any]] = Field(
        default_factory=list, description="The chosen rows, every column, with an empty label"
    )
    out: str | None = Field(None, description="Where the rows were written")


def job_info(job: Any) -> AdaptJob:
    """A store job row (or another job result model) as an `AdaptJob`."""
    from llmos.store.summaries import job_summary

    if isinstance(job, Result):
        fields = job.model_dump()
        return AdaptJob(**{k: fields[k] for k in AdaptJob.model_fields if k in fields})
    return AdaptJob(**job_summary(job))


def _settings(values: dict[str, Any]) -> Any:
    from llmos.adapt.continual import AdaptSettings
    from llmos.core.errors import UsageError

    try:
        return AdaptSettings(**{k: v for k, v in values.items() if v is not None})
    except TypeError as exc:
        raise UsageError(f"adapt settings: {exc}") from None


@operation("adapt", deployment="deployment")
def submit_adapt(
    ctx: Context,
    deployment: str,
    *,
    data: str | None = None,
    cpus: int = 1,
    start_kernel: bool = True,
    wait: bool = False,
    **settings: Any,
) -> AdaptJob:
    """Queue `adapt`: continual fine-tuning of the deployed model on its new feedback (or
    the labelled rows of dataset `data`) with replay; the job's gate promotes or rejects
    the candidate. `settings` are `AdaptSettings` fields (epochs, replay_ratio, ewc, lwf,
    holdout, tolerance, new_labels, lr, seed). No new feedback raises `UsageError` and
    queues nothing. With `wait`, return the job once it has finished."""
    from llmos.adapt.jobs import submit_adapt as submit
    from llmos.core.errors import UsageError

    if cpus < 1:
        raise UsageError(f"cpus must be at least 1, not {cpus}")
    config = _settings(settings)
    job = submit(ctx.store, deployment, config, data, cpus=cpus, actor=ctx.actor.name)
    if start_kernel:
        from llmos.kernel.scheduler import ensure_kernel

        ensure_kernel(ctx.settings)
    if wait:
        job = _wait(ctx, job.id)
    return job_info(job)


def _wait(ctx: Context, job_id: int, poll: float = 0.3) -> Any:
    from llmos.kernel.jobs import get_job

    while True:
        job = get_job(ctx.store, job_id)
        if job.finished:
            return job
        time.sleep(poll)


def adapt_result(job: AdaptJob) -> AdaptResult:
    """The decision of a finished adapt job; `JobError` unless it succeeded."""
    from llmos.core.errors import JobError

    if job.state != "succeeded":
        raise JobError(f"adapt job {job.id} {job.state}: {job.error}")
    return AdaptResult(job=job.id, **(job.result or {}))


@operation("adapt", deployment="deployment")
def adapt(
    ctx: Context, deployment: str, *, data: str | None = None, cpus: int = 1, **settings: Any
) -> AdaptResult:
    """`submit_adapt`, then wait: the gate's decision, candidate, parent, reasons and metrics."""
    return adapt_result(submit_adapt(ctx, deployment, data=data, cpus=cpus, wait=True, **settings))


@operation("feedback:read")
def plan_adapt(ctx: Context, deployment: str, *, data: str | None = None, **settings: Any) -> AdaptPlan:
    """What an adapt would use now (`--dry-run`): rows to train on and to hold out, per label."""
    from llmos.adapt.jobs import plan_adapt as plan

    return AdaptPlan(**plan(ctx.store, deployment, _settings(settings), data))


@operation("feedback:read")
def adapt_history(ctx: Context, deployment: str) -> list[Decision]:
    """Every promote / reject / rollback decision of `deployment`, oldest first."""
    from llmos.store.adaptation import decision_info, list_decisions
    from llmos.store.deployments import get_deployment

    get_deployment(ctx.store, deployment)  # an unknown name is an error, not an empty history
    return [Decision(**decision_info(d)) for d in list_decisions(ctx.store, deployment)]


@operation("adapt", deployment="deployment")
def rollback(ctx: Context, deployment: str, reason: str = "") -> Decision:
    """Re-point `deployment` to the model it served before its latest re-point (recorded)."""
    from llmos.store.adaptation import decision_info, rollback_deployment

    return Decision(**decision_info(rollback_deployment(ctx.store, deployment, ctx.actor.name, reason)))


@operation("adapt")
def suggest_labels(
    ctx: Context,
    dataset: str,
    model: str,
    k: int = 50,
    strategy: str = "margin",
    out: str | os.PathLike[str] | None = None,
) -> LabelSuggestions:
    """The k rows of `dataset` most worth labelling for `model` (uncertain, and diverse
    among the uncertain), written to `out` (CSV or JSONL) with an empty label column."""
    from llmos.adapt.active import suggest_rows

    found = suggest_rows(ctx.store, dataset, model, k, strategy, None if out is None else Path(out))
    return LabelSuggestions(**found)
