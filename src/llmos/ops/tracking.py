"""Experiment tracking: a registered run's per-step metrics (loss, learning rate, samples/s,
validation metrics per epoch) and its export to MLflow or TensorBoard."""

from __future__ import annotations

from pydantic import Field

from llmos.ops.context import Context
from llmos.ops.registry import operation
from llmos.ops.results import Result, Timestamp


class RunMetricPoint(Result):
    step: int = Field(description="Optimizer step (val_* metrics: the epoch's last step)")
    epoch: int
    name: str = Field(description="loss, lr, samples_per_s, val_loss, val_accuracy, ...")
    value: float
    at: Timestamp


class RunMetrics(Result):
    """Every stored per-step metric of one registered run, by step then name."""

    model: str = Field(description="NAME@VERSION")
    names: list[str]
    points: list[RunMetricPoint]


class ExportedRun(Result):
    model: str
    uri: str = Field(description="Where it was written: the MLflow tracking URI or tensorboard://DIR")
    tracker: str = Field("mlflow", description="mlflow or tensorboard")
    run_id: str = Field(description="The MLflow run id, or the TensorBoard run's folder")


@operation("models:read")
def run_metrics(ctx: Context, ref: str, names: list[str] | None = None) -> RunMetrics:
    """A registered run's per-step metrics (NAME: the latest version); `names`: only those."""
    from llmos.store.models import get_model
    from llmos.store.tracking import run_metrics as stored

    row = get_model(ctx.store, ref)
    points = [RunMetricPoint.model_validate(m) for m in stored(ctx.store, row.id, names, ctx.project)]
    return RunMetrics(model=row.ref, names=sorted({p.name for p in points}), points=points)


@operation("models:write")
def export_run(ctx: Context, ref: str, to: str) -> ExportedRun:
    """Write a registered run (spec as parameters, per-step metrics, report files) to the
    MLflow tracking store at `to` (sqlite:///mlflow.db, a folder, http://host:5000), or as
    a TensorBoard run under `tensorboard://DIR` (DIR/NAME@VERSION)."""
    from llmos.store.models import get_model
    from llmos.train.tracking import export_run as export

    row = get_model(ctx.store, ref)
    tracker, run_id = export(ctx.store, row, to, ctx.project)
    return ExportedRun(model=row.ref, uri=to, tracker=tracker, run_id=run_id)
