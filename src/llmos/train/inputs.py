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


def label_column(spec: TaskSpec) -> str | None:
    """The column splits are stratified on: a classification label, none for generation."""
    output = spec.outputs[0] if spec.outputs else None
    return output.name if output is not None and output.type in ("category", "set") else None


def _load(store: Store, ref: str | None) -> tuple[DatasetVersion | None, pd.DataFrame | None]:
    if ref is None:
        return None, None
    dataset = get_dataset(store, ref)
    return dataset, load_frame(store, dataset)


def _check_columns(spec: TaskSpec, dataset: DatasetVersion, frame: pd.DataFrame) -> None:
    wanted = [("input", f.name) for f in spec.inputs] + [
        ("label" if f.type != "text" else "response", f.name) for f in spec.outputs
    ]
    for what, column in wanted:
        if column not in frame.columns:
            raise DataError(
                f"dataset {dataset.ref}: {what} column {column!r} not found; "
                f"columns are {', '.join(frame.columns)}"
            )
    label = label_column(spec)
    empty = int(frame[label].isna().sum()) if label is not None else 0
    if empty and spec.output.type == "category":
        raise DataError(
            f"dataset {dataset.ref}: label column {label!r} has {empty} empty values; "
            "fill or drop those rows and import again"
        )


@dataclass
class Inputs:
    """A spec's datasets (train, test, validation; absent ones None) and resolved model
    (None for specs without a spec-wide `model`)."""

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
    resolved = None  # multimodal specs may have no spec-wide model: each input names its encoder
    if spec.model is not None:
        resolved = resolve_model(spec.model.name, store.settings.artifacts_dir)
        check_loadable(resolved)
    return Inputs(loaded, resolved)
