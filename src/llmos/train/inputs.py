"""The inputs of a training run, checked before any work: datasets exist and have the
spec's columns and labels, and the model name resolves. No torch here, so queueing a
job (`llmos train --detach`) checks its spec in a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from llmos.core.errors import DataError
from llmos.spec.schema import TaskSpec
from llmos.store.datasets import get_dataset, load_frame
from llmos.store.db import Store
from llmos.store.schema import DatasetVersion


def _load(store: Store, ref: str | None) -> tuple[DatasetVersion | None, pd.DataFrame | None]:
    if ref is None:
        return None, None
    dataset = get_dataset(store, ref)
    return dataset, load_frame(store, dataset)


def _check_columns(spec: TaskSpec, dataset: DatasetVersion, frame: pd.DataFrame) -> None:
    for what, column in (("input", spec.text_input.name), ("label", spec.output.name)):
        if column not in frame.columns:
            raise DataError(
                f"dataset {dataset.ref}: {what} column {column!r} not found; "
                f"columns are {', '.join(frame.columns)}"
            )
    empty = int(frame[spec.output.name].isna().sum())
    if empty and spec.output.type == "category":
        raise DataError(
            f"dataset {dataset.ref}: label column {spec.output.name!r} has {empty} empty values; "
            "fill or drop those rows and import again"
        )


@dataclass
class Inputs:
    """A spec's datasets (train, test, validation; absent ones None) and resolved model."""

    datasets: list[tuple[DatasetVersion | None, pd.DataFrame | None]]
    resolved: Any


def check_inputs(store: Store, spec: TaskSpec) -> Inputs:
    """Everything that can be wrong with a spec's inputs (datasets, columns, model name),
    checked before any work is done; `llmos train --detach` calls it before queueing
    (device availability needs torch, and is checked when the run starts)."""
    from llmos.models.zoo import check_loadable, resolve_model

    loaded = [_load(store, ref) for ref in (spec.data.train, spec.data.test, spec.data.validation)]
    for ds, frame in loaded:
        if ds is not None and frame is not None:
            _check_columns(spec, ds, frame)
    resolved = resolve_model(spec.model.name, store.settings.artifacts_dir)
    check_loadable(resolved)
    return Inputs(loaded, resolved)
