"""Fine-tuning with the one loop: what every task whose model has a task head shares
(text classification's `SequenceClassifier`, and the fusion models of token, image,
tabular and multimodal tasks). The workflow gives the parts (`train.parts.TaskParts`:
drivers and model); this trains them locally or on Ray, evaluates, and writes the folder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from llmos.modalities.base import OutputDriver
from llmos.spec.schema import TaskSpec
from llmos.train.loop import fit, latest_checkpoint, seed_everything, steps_per_epoch
from llmos.train.parts import TaskParts, fit_output
from llmos.train.predict import Predictor
from llmos.train.workflow import (
    Prepared,
    RunResult,
    TrainJob,
    encode_rows,
    loop_settings,
    training_summary,
    write_report,
)

PartsBuilder = Callable[[TaskSpec, pd.DataFrame, OutputDriver, Prepared, int], TaskParts]


def fine_tune(job: TrainJob, task_parts: PartsBuilder) -> RunResult:
    """Fine-tune the model `task_parts` builds, locally or on Ray with `backend: ray`; return
    its model folder, metrics and history. Resumes from the latest checkpoint in the job's
    `checkpoint_dir`."""
    from llmos.models.peft_methods import after_optimizer_step

    spec, prepared, run_dir, progress = job.spec, job.prepared, job.run_dir, job.progress
    checkpoint_dir = job.checkpoint_dir
    splits, placement = prepared.splits, prepared.placement
    output = fit_output(spec, splits.train[spec.output.name])
    cfg = spec.train
    total_steps = steps_per_epoch(len(splits.train), cfg.batch_size, cfg.gradient_accumulation) * cfg.epochs
    parts = task_parts(spec, splits.train, output, prepared, total_steps)
    model, driver = parts.model, parts.inputs
    train_rows = encode_rows(driver, output, splits.train, prepared.train_source)
    output.encode(splits.test[output.column], prepared.test_source)  # unseen test labels fail now
    val_rows = None
    if splits.validation is not None:
        val_rows = encode_rows(driver, output, splits.validation, prepared.val_source)

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
            job.store,
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
    write_report(
        folder, spec, metrics, result.history, f"{spec.name} on {prepared.test_source}", result.step_metrics
    )
    return folder, metrics, result.history, result.train_seconds
