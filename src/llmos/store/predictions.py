"""Prediction sets: the output of a batch prediction, kept as a versioned Parquet artifact.

A prediction set `NAME@V` records which model version predicted which dataset version
(and the job that ran it), so predictions have the same lineage as models. Like a
dataset, the table is one content-addressed Parquet blob; the row is inserted in one
transaction, together with whatever `finalize` does (the kernel finishes the job there).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from llmos.core.errors import NotFoundError
from llmos.core.util import check_name
from llmos.store.db import Store
from llmos.store.schema import PredictionSet
from llmos.store.versions import find_version, known_names, list_versions, next_version


def register_predictions(
    store: Store,
    *,
    name: str,
    frame: pd.DataFrame,
    model_id: int,
    dataset_id: int,
    job_id: int | None = None,
    finalize: Callable[[Session, PredictionSet], None] | None = None,
) -> PredictionSet:
    check_name(name, "prediction set name")
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    payload = buf.getvalue()
    artifact = store.artifacts.put_bytes(payload)
    with store.transaction() as session:
        row = PredictionSet(
            name=name,
            version=next_version(session, PredictionSet, name),
            model_id=model_id,
            dataset_id=dataset_id,
            job_id=job_id,
            num_rows=len(frame),
            columns=[str(c) for c in frame.columns],
            artifact=artifact,
            size_bytes=len(payload),
        )
        session.add(row)
        session.flush()
        if finalize is not None:
            finalize(session, row)
        return row


def get_predictions(store: Store, ref: str) -> PredictionSet:
    row = find_version(store, PredictionSet, ref, "prediction set")
    if row is None:
        known = known_names(store, PredictionSet)
        raise NotFoundError(f"prediction set {ref!r} not found (prediction sets: {known})")
    return row


def list_predictions(store: Store, name: str | None = None) -> list[PredictionSet]:
    return list_versions(store, PredictionSet, name)


def predictions_made_by_job(store: Store, job_id: int) -> PredictionSet | None:
    with store.read() as session:
        return session.scalars(select(PredictionSet).where(PredictionSet.job_id == job_id)).first()


def load_predictions(store: Store, row: PredictionSet) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(store.artifacts.read_bytes(row.artifact, f"prediction set {row.ref}")))
