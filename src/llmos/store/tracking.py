"""Per-step run metrics: written in one batch inside the transaction that registers a
model (so a run's curves exist exactly when its model does), read back per model."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from llmos.core.util import utcnow
from llmos.store.db import Store
from llmos.store.schema import RunMetric


def add_run_metrics(
    session: Session,
    model_id: int,
    steps: Iterable[tuple[int, int, str, float]] | Iterable[list[object]],
    job_id: int | None = None,
    project: str = "default",
) -> int:
    """Insert every (step, epoch, name, value) with one executemany; returns the count."""
    now = utcnow()
    rows = [
        {
            "project": project,
            "model_id": model_id,
            "job_id": job_id,
            "step": int(step),  # type: ignore[call-overload]
            "epoch": int(epoch),  # type: ignore[call-overload]
            "name": str(name),
            "value": float(value),  # type: ignore[arg-type]
            "at": now,
        }
        for step, epoch, name, value in steps
    ]
    if rows:
        session.execute(insert(RunMetric), rows)
    return len(rows)


def run_metrics(
    store: Store, model_id: int, names: list[str] | None = None, project: str = "default"
) -> list[RunMetric]:
    """A model's stored metrics, by step then name (`names`: only those)."""
    query = select(RunMetric).where(RunMetric.model_id == model_id, RunMetric.project == project)
    if names:
        query = query.where(RunMetric.name.in_(names))
    with store.read() as session:
        return list(session.scalars(query.order_by(RunMetric.step, RunMetric.name, RunMetric.id)))
