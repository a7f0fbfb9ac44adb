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
import yaml
from sqlalchemy.orm import Session

from llmos.core.errors import DataError, UsageError
from llmos.core.logging import quiet_third_party
from llmos.core.progress import Progress, SilentProgress
from llmos.core.util import utcnow
from llmos.modalities.base import InputDriver, OutputDriver
from llmos.modalities.inputs import InputSet
from llmos.spec.schema import TaskSpec, TrainConfig
from llmos.store.db import Store
from llmos.store.models import model_folder, register_model
from llmos.store.schema import DatasetVersion, ModelVersion
from llmos.train.device import resolve_placement
from llmos.train.inputs import check_inputs, label_column
from llmos.train.loop import LoopSettings, Rows, fit, latest_checkpoint, seed_everything, steps_per_epoch
from llmos.train.metrics import plot_confusion_matrix
from llmos.train.predict import Predictor


@dataclass
class TrainOutcome:
    model: ModelVersion
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    report_dir: Path


@dataclass
class Splits:
    train: pd.DataFrame
    test: pd.DataFrame
    validation: pd.DataFrame | None
    record: dict[str, Any]


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


def _rows(driver: InputDriver | InputSet, output: OutputDriver, frame: pd.DataFrame, source: str) -> Rows:
    output.check_column(frame, source)
    targets = output.encode(frame[output.column], source)
    features = driver.encode_frame(frame, source)
    return Rows(features, [driver.length(f) for f in features], targets)


def loop_settings(
    cfg: TrainConfig, method: str, task: str = "text-classification", privacy: Any = None
) -> LoopSettings:
    """The loop's settings from the spec, unset learning rates taking the method's defaults;
    `privacy` (train.privacy.PrivacySettings) makes the run DP-SGD."""
    from llmos.models.peft_methods import default_lrs

    lr, head_lr = default_lrs(method, task)
    return LoopSettings(
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        eval_batch_size=cfg.eval_batch_size,
        lr=cfg.lr or lr,
        head_lr=cfg.head_lr or head_lr,
        schedule=cfg.schedule,
        warmup=cfg.warmup,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        gradient_accumulation=cfg.gradient_accumulation,
        group_by_length=cfg.group_by_length,
        seed=cfg.seed,
        early_stopping=cfg.early_stopping,
        checkpoint_every=cfg.checkpoint_every,
        privacy=privacy,
    )


@dataclass
class Prepared:
    """A run's checked inputs: datasets, recorded splits, the resolved model and device."""

    train_ds: DatasetVersion
    test_ds: DatasetVersion | None
    val_ds: DatasetVersion | None
    splits: Splits
    resolved: Any  # models.zoo.ResolvedModel; None for tasks without a spec-wide `model`
    placement: Any  # train.device.Placement
    artifacts_dir: Path | None = None  # where zoo models cache their weights

    @property
    def train_source(self) -> str:
        return f"dataset {self.train_ds.ref}"

    @property
    def test_source(self) -> str:
        return f"dataset {self.test_ds.ref}" if self.test_ds else f"test split of {self.train_ds.ref}"

    @property
    def val_source(self) -> str:
        return f"dataset {self.val_ds.ref}" if self.val_ds else "validation split"


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


def write_report(
    folder: Path, spec: TaskSpec, metrics: dict[str, Any], history: list[dict[str, float]], title: str
) -> None:
    """The spec and report (metrics, history, confusion matrix) beside a model's weights."""
    report = folder / "report"
    report.mkdir(parents=True, exist_ok=True)
    (report / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (report / "history.json").write_text(json.dumps(history, indent=2))
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    if "confusion_matrix" in metrics:
        (report / "confusion_matrix.json").write_text(json.dumps(metrics["confusion_matrix"]))
        plot_confusion_matrix(metrics["confusion_matrix"], report / "confusion_matrix.png", title)


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
    resolved = prepared.resolved
    if spec.task in ("text-classification", "generation"):
        base_model, method = resolved.alias or resolved.path, spec.method.type
    else:  # fusion models name their inputs' models and methods in their config
        from llmos.models.build import read_model_config

        config = read_model_config(folder)
        base_model, method = config["base_model"], config["method"]
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
        finalize=finalize,
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
    """Train, evaluate and register the model a spec describes; dispatches on task and method.
    A kernel job passes a `checkpoint_dir` that outlives the attempt (fine-tuning a
    classifier resumes from its latest checkpoint), its id for the model's lineage, and
    `finalize`, run in the registering transaction."""
    from llmos.spec.schema import PROMPT_METHODS

    progress = progress or SilentProgress()
    prepared = prepare(store, spec)
    if spec.backend.type == "ray" and (
        spec.task != "text-classification" or spec.method.type in PROMPT_METHODS
    ):
        raise UsageError(
            "backend 'ray' runs fine-tuned text-classification; use backend 'local' for this spec"
        )
    run_dir = new_run_dir(store, spec)
    try:
        if spec.task == "generation":
            from llmos.train.generation import run_generation

            folder, metrics, history, seconds = run_generation(spec, prepared, run_dir, progress)
        elif spec.method.type in PROMPT_METHODS:
            from llmos.train.prompting import run_prompt_classifier

            result = run_prompt_classifier(store, spec, prepared, run_dir, progress)
            folder, metrics, history, seconds = result
        else:
            folder, metrics, history, seconds = run_classifier(
                spec, prepared, run_dir, progress, checkpoint_dir
            )
        outcome = register_run(store, spec, prepared, folder, metrics, history, seconds, job_id, finalize)
    finally:
        # the registered copy lives in the artifact store; the run folder held the work in progress
        shutil.rmtree(run_dir, ignore_errors=True)
    if checkpoint_dir is not None:  # the job's checkpoints are done with once it registered
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return outcome


RunResult = tuple[Path, dict[str, Any], list[dict[str, float]], float]


def training_summary(result: Any, trainable: int, total: int) -> dict[str, Any]:
    """What a model's metrics record about its training (`result` is the loop's `LoopResult`)."""
    return {
        "train_seconds": round(result.train_seconds, 2),
        "train_samples_per_second": round(result.samples_per_second, 2),
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "trainable_parameters": trainable,
        "total_parameters": total,
        **({"privacy": result.privacy} if getattr(result, "privacy", None) else {}),
    }


def run_classifier(
    spec: TaskSpec, prepared: Prepared, run_dir: Path, progress: Progress, checkpoint_dir: Path | None = None
) -> RunResult:
    """Fine-tune the task's model (an encoder classifier, or a fusion model for token,
    image, tabular and multimodal tasks), locally or on Ray with `backend: ray`; return its
    model folder, metrics and history. Resumes from the latest checkpoint in `checkpoint_dir`."""
    from llmos.models.peft_methods import after_optimizer_step
    from llmos.train.parts import fit_output, task_parts

    splits, placement = prepared.splits, prepared.placement
    output = fit_output(spec, splits.train[spec.output.name])
    cfg = spec.train
    total_steps = steps_per_epoch(len(splits.train), cfg.batch_size, cfg.gradient_accumulation) * cfg.epochs
    parts = task_parts(spec, splits.train, output, prepared, total_steps)
    model, driver = parts.model, parts.inputs
    train_rows = _rows(driver, output, splits.train, prepared.train_source)
    output.encode(splits.test[output.column], prepared.test_source)  # unseen test labels fail now
    val_rows = None
    if splits.validation is not None:
        val_rows = _rows(driver, output, splits.validation, prepared.val_source)

    privacy = None
    if spec.privacy is not None:
        from llmos.train.privacy import resolve_privacy

        privacy = resolve_privacy(spec.privacy, len(train_rows))
    settings = loop_settings(cfg, spec.method.type, privacy=privacy)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    progress.log(
        f"training {spec.name}: {parts.base_model} + {parts.method} on {placement.describe()}, "
        f"{len(train_rows)} rows, {output.num_outputs} outputs, "
        f"{trainable:,} of {total:,} parameters trainable"
    )

    def after_step(step: int) -> None:
        for adapted in parts.adapted:
            after_optimizer_step(adapted, step)

    if spec.backend.type == "ray":
        from llmos.models.build import build_classifier
        from llmos.train.distributed import ray_fit

        resolved, pooling, dropout = prepared.resolved, parts.config["pooling"], spec.pretrained.dropout

        def build() -> Any:  # each Ray worker builds the same classifier (text classification only)
            seed_everything(cfg.seed)
            return build_classifier(resolved, spec.method, output.num_outputs, pooling, dropout, total_steps)

        result = ray_fit(
            model,
            build,
            driver.collate,
            output,
            train_rows,
            settings,
            spec.backend,
            run_dir,
            val_rows,
            progress,
        )
    else:
        checkpoints = checkpoint_dir or run_dir / "checkpoints"
        result = fit(
            model,
            driver.collate,
            output,
            train_rows,
            settings,
            placement,
            validation=val_rows,
            checkpoint_dir=checkpoints,
            progress=progress,
            after_step=after_step,
            resume_from=latest_checkpoint(checkpoints) if checkpoints.exists() else None,
        )
    predictor = Predictor(model, driver, output, placement, cfg.eval_batch_size)
    metrics = predictor.evaluate(splits.test, prepared.test_source, progress)
    metrics.update(training_summary(result, trainable, total))
    folder = run_dir / "model"
    parts.save(folder)
    write_report(folder, spec, metrics, result.history, f"{spec.name} on {prepared.test_source}")
    return folder, metrics, result.history, result.train_seconds
