"""Deployments: served names and the model versions they point at."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from llmos.ops.context import Context
from llmos.ops.registry import operation
from llmos.ops.results import Result, Timestamp
from llmos.store.schema import Deployment


class DeploymentInfo(Result):
    name: str
    model: str = Field(description="NAME@V of a registered model, or a zoo alias")
    kind: str = Field(description="classifier, generation or embedding")
    optimize: str | None = Field(
        None,
        description="onnx, int8 or torch as deployed; None: the default (ONNX Runtime for a whole"
        " text classifier on a CPU, torch otherwise)",
    )
    pinned: bool = False
    revision: int = Field(description="How many times it was (re-)pointed")
    created_at: Timestamp
    updated_at: Timestamp
    memory: dict[str, Any] | None = Field(
        None, description="Where its model is in the answering server's memory (None: not loaded)"
    )
    server: dict[str, Any] | None = Field(None, description="The answering server's figures")


def deployment_info(row: Deployment, runtime: Any = None) -> DeploymentInfo:
    options = row.options or {}
    info = DeploymentInfo(
        name=row.name,
        model=row.model,
        kind=row.kind,
        optimize=options.get("optimize"),
        pinned=bool(options.get("pin")),
        revision=row.revision,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
    if runtime is not None:
        described = runtime.describe(row)
        info.memory, info.server = described.get("memory"), described.get("server")
    return info


@operation("deployments:read")
def deployments(ctx: Context) -> list[DeploymentInfo]:
    """Every deployment and the model it points at."""
    from llmos.store.deployments import list_deployments as rows

    return [deployment_info(r) for r in rows(ctx.store)]


@operation("deployments:read")
def deployment(ctx: Context, name: str) -> DeploymentInfo:
    """One deployment; from a server, also where its model is in memory."""
    from llmos.store.deployments import get_deployment

    return deployment_info(get_deployment(ctx.store, name), ctx.runtime)


@operation("deployments:write")
def deploy(
    ctx: Context, model: str, name: str, optimize: str | None = None, pin: bool = False
) -> DeploymentInfo:
    """Point deployment `name` at `model` (NAME[@V] or a zoo alias): created, or re-pointed atomically."""
    from llmos.serve.targets import deploy as point

    return deployment_info(point(ctx.store, model, name, optimize, pin))


@operation("deployments:write")
def undeploy(ctx: Context, name: str) -> DeploymentInfo:
    """Remove a deployment (a running server frees its model's memory)."""
    from llmos.serve.targets import undeploy as remove

    pager = getattr(ctx.runtime, "pager", None)
    return deployment_info(remove(ctx.store, name, pager))


class TrafficBucket(Result):
    start: float = Field(description="When the bucket began (Unix seconds)")
    offset_s: float = Field(description="Its start relative to the answer's `now` (negative: before)")
    requests: int
    errors: int
    rate_per_s: float = Field(description="Requests per second over the bucket")
    p50_ms: float | None = Field(description="Median latency (None: no request)")
    p95_ms: float | None
    p99_ms: float | None
    mean_batch: float | None = Field(description="Mean inputs of the batches its requests ran in")
    max_batch: int | None


class TrafficInfo(Result):
    deployment: str
    now: float = Field(description="The answering server's clock (Unix seconds)")
    seconds: int = Field(description="The window asked for")
    bucket_s: int
    buckets: list[TrafficBucket] = Field(description="Oldest first, empty buckets included")
    memory: dict[str, Any] | None = Field(
        None, description="Where its model or adapter is in the answering server's memory (None: not loaded)"
    )


@operation("metrics:read")
def traffic(ctx: Context, name: str, seconds: int = 900) -> TrafficInfo:
    """Recent requests, latency and batch sizes of a deployment, per 10-second bucket, as
    the answering server (one replica) saw them: kept in its memory for 15 minutes."""
    from llmos.core.errors import UsageError
    from llmos.serve.traffic import BUCKET_S, KEEP_S
    from llmos.store.deployments import get_deployment

    if not BUCKET_S <= seconds <= KEEP_S:
        raise UsageError(f"seconds: {seconds} is outside {BUCKET_S}..{KEEP_S} (a server keeps 15 minutes)")
    row = get_deployment(ctx.store, name)
    if ctx.runtime is None:
        raise UsageError(
            "traffic is counted by a running server (llmos serve) in its memory: ask it over HTTP"
            " (GET /v1/deployments/{name}/traffic, llmos.Client.traffic)"
        )
    now, rows = ctx.runtime.recent_traffic(row, seconds)
    return TrafficInfo(
        deployment=name,
        now=now,
        seconds=seconds,
        bucket_s=BUCKET_S,
        buckets=[TrafficBucket(**r) for r in rows],
        memory=ctx.runtime.resident(row),
    )
