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
    named = [getattr(f, "named_columns", None) for f in spec.inputs]  # inputs reading several columns
    wanted = [p for f, n in zip(spec.inputs, named) for p in (n() if n else [("input", f.name)])] + [
        ("label" if f.type != "text" else "response", f.name) for f in spec.outputs
    ]
    wanted += [("input", f.pair) for f in spec.inputs if f.type == "text-pair"]
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
        name = spec.model.name
        if name == AUTO:
            name = default_text_model(spec, loaded[0][1])
        resolved = registered_base(store, name)
        if resolved is None:
            resolved = resolve_model(name, store.settings.artifacts_dir)
            check_loadable(resolved)
    if spec.distill is not None and loaded[0][1] is not None:  # the teacher and its unlabelled rows
        from llmos.train.distill import teacher_labels, unlabelled_texts

        teacher_labels(store, spec, loaded[0][1])
        unlabelled_texts(store, spec)
    return Inputs(loaded, resolved)


AUTO = "auto"  # `model: auto`: llmos picks the pretrained model from the text column


def default_text_model(spec: TaskSpec, frame: pd.DataFrame | None) -> str:
    """The zoo model `model: auto` picks: the CJK default for a mostly Chinese, Japanese or
    Korean text column (measured on waimai10k: benchmarks/bench_chinese.py), else MiniLM."""
    from llmos.modalities.scripts import mostly_cjk
    from llmos.models.zoo import DEFAULT_CJK_MODEL, DEFAULT_TEXT_MODEL

    column = spec.inputs[0].name
    if frame is not None and column in frame.columns and mostly_cjk(frame[column].tolist()):
        return DEFAULT_CJK_MODEL
    return DEFAULT_TEXT_MODEL


def registered_base(store: Store, name: str) -> Any:
    """A model that `task: pretrain` registered (NAME or NAME@V), as a loadable base model;
    None when `name` is a zoo alias, a folder, or no such model (the zoo then resolves it)."""
    import json
    from pathlib import Path

    from llmos.models.zoo import ZOO, ResolvedModel
    from llmos.spec.tasks import task_rules
    from llmos.store.models import model_folder
    from llmos.store.schema import ModelVersion
    from llmos.store.versions import find_version

    if name in ZOO or Path(name).expanduser().exists() or "/" in name:
        return None
    row = find_version(store, ModelVersion, name, "model")
    if row is None:
        return None
    if not task_rules(row.task).makes_base:
        raise DataError(
            f"model {row.ref!r} is a {row.task} model; `model:` names a zoo alias, a folder, a "
            "Hugging Face id or a model registered by task: pretrain"
        )
    folder = model_folder(store, row)
    kind = json.loads((folder / "llmos_model.json").read_text()).get("kind")
    return ResolvedModel(name=row.ref, path=str(folder / "model"), kind=kind, registered=row.ref)
