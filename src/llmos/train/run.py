"""`train_from_spec`: one training run from a validated spec to a registered model.

The data path of DESIGN.md in one function: datasets from the store, a recorded split,
drivers encode the columns, the zoo and builders make the model, the loop trains it,
the predictor evaluates it, and the registry keeps it. Everything that can be wrong with
the inputs (datasets, columns, labels, model name) is checked before training starts;
a failed run removes its run folder and registers nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from llmos.core.errors import DataError, UsageError
from llmos.core.logging import quiet_third_party
from llmos.core.progress import Progress, SilentProgress
from llmos.core.util import utcnow
from llmos.spec.schema import TaskSpec
from llmos.store.db import Store
from llmos.store.models import model_folder, register_model
from llmos.store.schema import ModelVersion
from llmos.train.device import resolve_placement
from llmos.train.inputs import check_inputs, label_column
from llmos.train.workflow import (  # noqa: F401  (loop_settings, RunResult, write_report: re-exported)
    Prepared,
    RunResult,
    Splits,
    TrainJob,
    loop_settings,
    workflow_for,
    write_report,
)


@dataclass
class TrainOutcome:
    model: ModelVersion
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    report_dir: Path


def _index_digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(",".join(map(str, frame.index.tolist())).encode()).hexdigest()[:16]


def make_splits(
    spec: TaskSpec, train: pd.DataFrame, test: pd.DataFrame | None, validation: pd.DataFrame | None
) -> Splits:
    """Apply `data.split`; record seed, fractions and row-index digests for reproducibility."""
    from sklearn.model_selection import train_test_split

    cfg = spec.data.split
    label = label_column(spec)
    record: dict[str, Any] = {"validation": None}

    def cut(frame: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
        n_hold = round(len(frame) * fraction)
        stratify = False
        if label is not None:
            counts = frame[label].astype(str).value_counts()
            stratify = bool(cfg and cfg.stratify and counts.min() >= 2 and n_hold >= len(counts))
        if n_hold < 1 or n_hold >= len(frame):
            raise DataError(
                f"dataset {spec.data.train!r}: {len(frame)} rows are too few to hold out "
                f"{fraction:.0%}; use a separate test dataset"
            )
        keep, hold = train_test_split(
            frame,
            test_size=n_hold,
            random_state=seed,
            stratify=frame[label].astype(str) if stratify and label is not None else None,
        )
        return keep, hold, stratify

    if cfg is not None:
        record["split"] = cfg.model_dump()
    if test is None:
        assert cfg is not None  # the spec fills a default split when there is no test set
        train, test, strat = cut(train, cfg.test, cfg.seed)
        record["split"]["stratified"] = strat
    if validation is None and cfg is not None and cfg.validation > 0:
        fraction = cfg.validation / (1 - (cfg.test if spec.data.test is None else 0))
        train, validation, _ = cut(train, fraction, cfg.seed + 1)
    if validation is None and spec.train.early_stopping is not None:
        train, validation, _ = cut(train, 0.1, (cfg.seed if cfg else 42) + 1)
        record["validation"] = "10% of train (early stopping)"
    record["rows"] = {
        "train": len(train),
        "test": len(test),
        "validation": 0 if validation is None else len(validation),
    }
    record["index_digest"] = {"train": _index_digest(train), "test": _index_digest(test)}
    return Splits(
        train.reset_index(drop=True),
        test.reset_index(drop=True),
        None if validation is None else validation.reset_index(drop=True),
        record,
    )


def prepare(store: Store, spec: TaskSpec) -> Prepared:
    """Check every input before any work is done: datasets, columns, model, device; split."""
    quiet_third_party()
    inputs = check_inputs(store, spec)
    (train_ds, train_frame), (test_ds, test_frame), (val_ds, val_frame) = inputs.datasets
    assert train_ds is not None and train_frame is not None
    resolved = inputs.resolved
    placement = resolve_placement(spec.train.device, spec.train.precision)
    splits = make_splits(spec, train_frame, test_frame, val_frame)
    splits.record.update(
        train=train_ds.ref,
        test=test_ds.ref if test_ds else None,
        validation=val_ds.ref if val_ds else splits.record["validation"],
    )
    return Prepared(train_ds, test_ds, val_ds, splits, resolved, placement, store.settings.artifacts_dir)


def new_run_dir(store: Store, spec: TaskSpec) -> Path:
    return (
        store.plain_dir(store.settings.runs_dir)
        / f"{spec.name}-{utcnow():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    )


def register_run(
    store: Store,
    spec: TaskSpec,
    prepared: Prepared,
    folder: Path,
    metrics: dict[str, Any],
    history: list[dict[str, float]],
    train_seconds: float,
    job_id: int | None = None,
    finalize: Callable[[Session, ModelVersion], None] | None = None,
) -> TrainOutcome:
    """Register the model folder written by a run; the run folder is removed by the caller.
    `finalize` runs in the registering transaction (the kernel finishes the job there)."""
    summary = {k: v for k, v in metrics.items() if k not in ("confusion_matrix", "samples")}
    from llmos.models.build import read_model_config

    # every kind's config names its pretrained model(s) and method(s) (fusion models: all of
    # their inputs')
    config = read_model_config(folder)
    base_model, method = config["base_model"], config["method"]
    registered = getattr(prepared.resolved, "registered", None)
    if registered is not None:  # lineage: the registered base model version it was trained on
        base_model = registered

    steps_file = folder / "report" / "steps.json"
    steps = json.loads(steps_file.read_text()) if steps_file.exists() else []

    def record(session: Session, row: ModelVersion) -> None:  # the run's curves, in one batch
        from llmos.store.tracking import add_run_metrics

        add_run_metrics(session, row.id, steps, job_id)
        if finalize is not None:
            finalize(session, row)

    row = register_model(
        store,
        name=spec.name,
        task=spec.task,
        base_model=base_model,
        method=method,
        spec=spec.model_dump(mode="json"),
        folder=folder,
        train_dataset_id=prepared.train_ds.id,
        test_dataset_id=prepared.test_ds.id if prepared.test_ds else None,
        split=prepared.splits.record,
        metrics={**summary, "history": history},
        train_seconds=train_seconds,
        job_id=job_id,
        finalize=record,
    )
    report = model_folder(store, row) / "report"
    return TrainOutcome(model=row, metrics=metrics, history=history, report_dir=report)


def train_from_spec(
    store: Store,
    spec: TaskSpec,
    progress: Progress | None = None,
    *,
    checkpoint_dir: Path | None = None,
    job_id: int | None = None,
    finalize: Callable[[Session, ModelVersion], None] | None = None,
) -> TrainOutcome:
    """Train, evaluate and register the model a spec describes, with its task's workflow.
    A kernel job passes a `checkpoint_dir` that outlives the attempt (fine-tuning a
    classifier resumes from its latest checkpoint), its id for the model's lineage, and
    `finalize`, run in the registering transaction."""
    progress = progress or SilentProgress()
    prepared = prepare(store, spec)
    workflow = workflow_for(spec.task)
    if spec.backend.type == "ray" and not workflow.supports_ray(spec):
        raise UsageError(
            "backend 'ray' runs fine-tuned text-classification; use backend 'local' for this spec"
        )
    run_dir = new_run_dir(store, spec)
    try:
        job = TrainJob(store, spec, prepared, run_dir, progress, checkpoint_dir)
        folder, metrics, history, seconds = workflow.run(job)
        outcome = register_run(store, spec, prepared, folder, metrics, history, seconds, job_id, finalize)
    finally:
        # the registered copy lives in the artifact store; the run folder held the work in progress
        shutil.rmtree(run_dir, ignore_errors=True)
    if checkpoint_dir is not None:  # the job's checkpoints are done with once it registered
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    if spec.tracking is not None:
        export_tracking(store, spec, outcome.model, progress)
    return outcome


def export_tracking(store: Store, spec: TaskSpec, row: ModelVersion, progress: Progress) -> list[str]:
    """The spec's `tracking:` exports, once the run is registered. The model stands either
    way: an export that fails is a line in the run's log, not a failed run."""
    from llmos.core.errors import LlmosError
    from llmos.train.tracking import export_to_mlflow, export_to_tensorboard

    assert spec.tracking is not None
    done = []
    targets: list[tuple[str, str | None, Callable[[Store, ModelVersion, str, str], str]]] = [
        ("MLflow", spec.tracking.mlflow, export_to_mlflow),
        ("TensorBoard", spec.tracking.tensorboard, export_to_tensorboard),
    ]
    for tracker, where, export in targets:
        if where is None:
            continue
        try:
            found = export(store, row, where, row.project)
        except LlmosError as exc:
            progress.log(f"tracking: {exc.message}")
            continue
        progress.log(f"tracking: exported {row.ref} to {tracker} ({where}): {found}")
        done.append(tracker)
    return done
