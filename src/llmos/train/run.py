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

from llmos.core.errors import DataError
from llmos.core.logging import quiet_third_party
from llmos.core.progress import Progress, SilentProgress
from llmos.core.util import utcnow
from llmos.modalities import OUTPUT_DRIVERS
from llmos.modalities.base import OutputDriver
from llmos.modalities.text import TextDriver
from llmos.spec.schema import TaskSpec, TrainConfig
from llmos.store.db import Store
from llmos.store.models import model_folder, register_model
from llmos.store.schema import ModelVersion
from llmos.train.device import resolve_placement
from llmos.train.inputs import check_inputs
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
    label = spec.output.name
    record: dict[str, Any] = {"validation": None}

    def cut(frame: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
        counts = frame[label].astype(str).value_counts()
        n_hold = round(len(frame) * fraction)
        stratify = bool(cfg and cfg.stratify) and counts.min() >= 2 and n_hold >= len(counts)
        if n_hold < 1 or n_hold >= len(frame):
            raise DataError(
                f"dataset {spec.data.train!r}: {len(frame)} rows are too few to hold out "
                f"{fraction:.0%}; use a separate test dataset"
            )
        keep, hold = train_test_split(
            frame,
            test_size=n_hold,
            random_state=seed,
            stratify=frame[label].astype(str) if stratify else None,
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


def _rows(driver: TextDriver, output: OutputDriver, frame: pd.DataFrame, source: str) -> Rows:
    targets = output.encode(frame[output.column], source)
    features = driver.encode(frame[driver.column].tolist())
    return Rows(features, [driver.length(f) for f in features], targets)


def loop_settings(cfg: TrainConfig, method: str) -> LoopSettings:
    """The loop's settings from the spec, unset learning rates taking the method's defaults."""
    from llmos.models.peft_methods import default_lrs

    lr, head_lr = default_lrs(method)
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
    )


def write_model_folder(
    folder: Path,
    model: Any,
    tokenizer: Any,
    config: dict[str, Any],
    spec: TaskSpec,
    metrics: dict[str, Any],
    history: list[dict[str, float]],
    title: str,
) -> None:
    """Save weights, spec and report (metrics, history, confusion matrix) into `folder`."""
    from llmos.models.build import save_classifier

    save_classifier(model, tokenizer, config, folder)
    report = folder / "report"
    report.mkdir()
    (report / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (report / "history.json").write_text(json.dumps(history, indent=2))
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    if "confusion_matrix" in metrics:
        (report / "confusion_matrix.json").write_text(json.dumps(metrics["confusion_matrix"]))
        plot_confusion_matrix(metrics["confusion_matrix"], report / "confusion_matrix.png", title)


def train_from_spec(
    store: Store,
    spec: TaskSpec,
    progress: Progress | None = None,
    *,
    checkpoint_dir: Path | None = None,
    job_id: int | None = None,
    finalize: Callable[[Session, ModelVersion], None] | None = None,
) -> TrainOutcome:
    """Train, evaluate and register. A job passes a `checkpoint_dir` that outlives the
    attempt (training resumes from its latest checkpoint), its id for the model's lineage,
    and `finalize`, run in the registering transaction."""
    from llmos.models.build import build_classifier, choose_pooling, load_tokenizer
    from llmos.models.peft_methods import after_optimizer_step

    progress = progress or SilentProgress()
    quiet_third_party()
    # 1. every input is checked before any work is done
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
    out_cfg = spec.output.model_dump(exclude={"type", "name"})
    output = OUTPUT_DRIVERS[spec.output.type].fit(spec.output.name, splits.train[spec.output.name], **out_cfg)
    tokenizer = load_tokenizer(resolved.path)
    driver = TextDriver(spec.text_input.name, tokenizer, spec.text_input.max_length)
    train_rows = _rows(driver, output, splits.train, f"dataset {train_ds.ref}")
    test_source = f"dataset {test_ds.ref}" if test_ds else f"test split of {train_ds.ref}"
    output.encode(splits.test[output.column], test_source)  # unseen test labels fail now
    val_rows = None
    if splits.validation is not None:
        val_rows = _rows(
            driver,
            output,
            splits.validation,
            f"dataset {val_ds.ref}" if val_ds else "validation split",
        )

    cfg = spec.train
    settings = loop_settings(cfg, spec.method.type)
    total_steps = steps_per_epoch(len(train_rows), cfg.batch_size, cfg.gradient_accumulation) * cfg.epochs
    pooling = choose_pooling(spec.model.pooling, resolved)

    seed_everything(cfg.seed)
    model = build_classifier(
        resolved, spec.method, output.num_outputs, pooling, spec.model.dropout, total_steps
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    run_dir = store.settings.runs_dir / f"{spec.name}-{utcnow():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    checkpoints = checkpoint_dir or run_dir / "checkpoints"
    resume = latest_checkpoint(checkpoints) if checkpoints.exists() else None
    try:
        progress.log(
            f"training {spec.name}: {resolved.name} + {spec.method.type} on {placement.describe()}, "
            f"{len(train_rows)} rows, {output.num_outputs} labels, "
            f"{trainable:,} of {total:,} parameters trainable"
        )
        if spec.backend.type == "ray":
            from llmos.train.distributed import ray_fit

            def build() -> Any:
                return build_classifier(
                    resolved, spec.method, output.num_outputs, pooling, spec.model.dropout, total_steps
                )

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
                after_step=lambda step: after_optimizer_step(model.encoder, step),
                resume_from=resume,
            )
        predictor = Predictor(model, driver, output, placement, cfg.eval_batch_size)
        metrics = predictor.evaluate(splits.test, test_source, progress)
        metrics.update(
            train_seconds=round(result.train_seconds, 2),
            train_samples_per_second=round(result.samples_per_second, 2),
            epochs_run=len(result.history),
            best_epoch=result.best_epoch,
            trainable_parameters=trainable,
            total_parameters=total,
        )
        folder = run_dir / "model"
        base_model = resolved.alias or resolved.path  # an alias, an absolute folder or a hub id
        config: dict[str, Any] = {
            "task": spec.task,
            "base_model": base_model,
            "method": spec.method.type,
            "pooling": pooling,
            "dropout": spec.model.dropout,
            "hidden_size": model.head.in_features,
            "input": {"type": "text", "column": driver.column, "max_length": driver.max_length},
            "output": output.state(),
        }
        write_model_folder(
            folder,
            model,
            tokenizer,
            config,
            spec,
            metrics,
            result.history,
            f"{spec.name} on {test_source}",
        )
        summary = {k: v for k, v in metrics.items() if k not in ("confusion_matrix",)}
        row = register_model(
            store,
            name=spec.name,
            task=spec.task,
            base_model=base_model,
            method=spec.method.type,
            spec=spec.model_dump(mode="json"),
            folder=folder,
            train_dataset_id=train_ds.id,
            test_dataset_id=test_ds.id if test_ds else None,
            split=splits.record,
            metrics={**summary, "history": result.history},
            train_seconds=result.train_seconds,
            job_id=job_id,
            finalize=finalize,
        )
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    # the registered copy lives in the artifact store; the run folder held the work in progress
    shutil.rmtree(run_dir, ignore_errors=True)
    if checkpoint_dir is not None:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    report = model_folder(store, row) / "report"
    return TrainOutcome(model=row, metrics=metrics, history=result.history, report_dir=report)
