"""Model registry: versions with their spec, lineage, metrics and artifacts.

`register_model` stores a finished run's folder in the artifact store and inserts its
`ModelVersion` in one transaction; for PEFT methods the folder holds only the adapter
and the head, with `base_model` naming the base they apply to.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from llmos.core.errors import NotFoundError
from llmos.core.util import check_name
from llmos.store.audit import record
from llmos.store.db import Store
from llmos.store.schema import ModelVersion
from llmos.store.scope import project_folder
from llmos.store.versions import find_version, known_names, list_versions, next_version


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
    job_id: int | None = None,
    finalize: Callable[[Session, ModelVersion], None] | None = None,
) -> ModelVersion:
    """Store `folder` and insert the version. `finalize` runs inside the same transaction
    (the kernel marks the job that made the model finished there, so a model is never
    registered by a job that ends up cancelled, nor twice by a retried one)."""
    check_name(name, "model name")
    manifest = store.artifacts.put_dir(folder)
    with store.transaction() as session:
        row = ModelVersion(
            name=name,
            version=next_version(session, ModelVersion, name),
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
            job_id=job_id,
        )
        session.add(row)
        session.flush()
        if finalize is not None:
            finalize(session, row)
    record(store, "model.register", row.ref, detail={"task": task, "method": method, "job": job_id})
    return row


def model_made_by_job(store: Store, job_id: int) -> ModelVersion | None:
    """The version a job registered, if it got that far (a retried job checks this)."""
    with store.read() as session:
        return session.scalars(select(ModelVersion).where(ModelVersion.job_id == job_id)).first()


def get_model(store: Store, ref: str) -> ModelVersion:
    row = find_version(store, ModelVersion, ref, "model")
    if row is None:
        known = known_names(store, ModelVersion)
        raise NotFoundError(
            f"model {ref!r} not found (registered models: {known}); train one with `llmos train`"
        )
    return row


def list_models(
    store: Store, name: str | None = None, limit: int | None = None, offset: int = 0
) -> list[ModelVersion]:
    return list_versions(store, ModelVersion, name, limit, offset)


def model_folder(store: Store, model: ModelVersion) -> Path:
    """The model's files laid out in the workspace cache (hard links to the blobs); in an
    encrypted workspace, decrypted into a private folder outside the workspace instead."""
    dest = store.plain_dir(
        store.settings.cache_dir / project_folder(model.project) / model.name / str(model.version)
    )
    return store.artifacts.materialize(model.artifacts, dest)


def model_labels(store: Store, model: ModelVersion) -> list[str] | None:
    """The label set of a classifier version (None for models without labels): every label
    its head has a row for, which is the spec's declared `labels` when it has them, so a
    label without training rows yet is valid feedback and a label outside it is not."""
    import json

    config = json.loads((model_folder(store, model) / "llmos_model.json").read_text())
    labels = (config.get("output") or {}).get("labels")
    return list(labels) if labels is not None else None


def share_model(store: Store, ref: str, project: str) -> ModelVersion:
    """Publish model version `ref` of the current project to `project`, read-only: a new
    version there (same name) whose files are the same content-addressed blobs and whose
    `shared_from` names the source; recorded in the audit log of both projects."""
    from llmos.store.projects import get_project
    from llmos.store.scope import current_project, in_project

    source = get_model(store, ref)
    origin = f"{current_project()}/{source.ref}"
    get_project(store, project)
    if project == current_project():
        from llmos.core.errors import UsageError

        raise UsageError(f"model {source.ref} is already in project {project!r}: share it with another one")
    with in_project(project):
        with store.transaction() as session:
            already = session.scalars(
                select(ModelVersion).where(
                    ModelVersion.name == source.name, ModelVersion.shared_from == origin
                )
            ).first()
            if already is not None:
                return already
            row = ModelVersion(
                name=source.name,
                version=next_version(session, ModelVersion, source.name),
                task=source.task,
                base_model=source.base_model,
                method=source.method,
                spec=source.spec,
                train_dataset_id=source.train_dataset_id,
                test_dataset_id=source.test_dataset_id,
                split=source.split,
                metrics=source.metrics,
                artifacts=source.artifacts,
                train_seconds=source.train_seconds,
                shared_from=origin,
            )
            session.add(row)
            session.flush()
        record(store, "model.shared_in", row.ref, detail={"from": origin})
    record(store, "model.share", source.ref, detail={"to": f"{project}/{row.ref}"})
    return row
