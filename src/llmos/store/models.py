"""Model registry: versions with their spec, lineage, metrics and artifacts.

`register_model` stores a finished run's folder in the artifact store and inserts its
`ModelVersion` in one transaction; for PEFT methods the folder holds only the adapter
and the head, with `base_model` naming the base they apply to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from llmos.core.errors import NotFoundError
from llmos.core.util import check_name, parse_ref
from llmos.store.db import Store
from llmos.store.schema import ModelVersion


def register_model(
    store: Store,
    *,
    name: str,
    task: str,
    base_model: str,
    method: str,
    spec: dict[str, Any],
    folder: Path,
    train_dataset_id: int | None,
    test_dataset_id: int | None,
    split: dict[str, Any],
    metrics: dict[str, Any],
    train_seconds: float,
) -> ModelVersion:
    check_name(name, "model name")
    manifest = store.artifacts.put_dir(folder)
    with store.transaction() as session:
        latest = session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.name == name))
        row = ModelVersion(
            name=name,
            version=(latest or 0) + 1,
            task=task,
            base_model=base_model,
            method=method,
            spec=spec,
            train_dataset_id=train_dataset_id,
            test_dataset_id=test_dataset_id,
            split=split,
            metrics=metrics,
            artifacts=manifest,
            train_seconds=train_seconds,
        )
        session.add(row)
        session.flush()
        return row


def get_model(store: Store, ref: str) -> ModelVersion:
    name, version = parse_ref(ref, "model")
    with store.read() as session:
        query = select(ModelVersion).where(ModelVersion.name == name)
        if version is None:
            query = query.order_by(ModelVersion.version.desc())
        else:
            query = query.where(ModelVersion.version == version)
        row = session.scalars(query).first()
    if row is None:
        known = ", ".join(sorted({m.name for m in list_models(store)})) or "none yet"
        raise NotFoundError(
            f"model {ref!r} not found (registered models: {known}); train one with `llmos train`"
        )
    return row


def list_models(store: Store, name: str | None = None) -> list[ModelVersion]:
    with store.read() as session:
        query = select(ModelVersion).order_by(ModelVersion.name, ModelVersion.version)
        if name:
            query = query.where(ModelVersion.name == name)
        return list(session.scalars(query))


def update_metrics(store: Store, model_id: int, metrics: dict[str, Any]) -> None:
    with store.transaction() as session:
        row = session.get(ModelVersion, model_id)
        if row is None:
            raise NotFoundError(f"model id {model_id} not found")
        row.metrics = {**row.metrics, **metrics}


def model_folder(store: Store, model: ModelVersion) -> Path:
    """The model's files laid out in the workspace cache (hard links to the blobs)."""
    dest = store.settings.cache_dir / "models" / model.name / str(model.version)
    return store.artifacts.materialize(model.artifacts, dest)
