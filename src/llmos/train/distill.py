"""Distillation and self-training: a small student learns a teacher's label probabilities.

What `distill:` in a text-classification spec does. The teacher is any registered text
classifier with the spec's labels: a fine-tuned model, or an LLM asked zero- or few-shot
(`method: zero-shot | few-shot`), whose scores are the log-likelihoods of each label's
words after one prompt per text (`models.llm_classifier.LabelScorer`: the prompt runs
once and every label's continuation runs on its cache, not free generation). Its
probabilities over the unlabelled rows (softened by `temperature`) are the student's
targets there, and the training rows keep their own labels; the student is the spec's
model and method (MiniLM + LoRA by default) trained by the one loop. With `rounds`,
self-training follows: the student predicts the unlabelled rows, those it is at least
`confidence` sure of take its label, and a new student trains on that (Yarowsky /
noisy-student style, without the noise).

Asking a 135M LLM about 2,000 texts takes tens of minutes on a CPU, so the teacher's
answers are cached under `LLMOS_HOME/distill/` per teacher version, in blocks of texts
keyed by their digest: a rerun, another student or a run killed halfway asks the teacher
only about the texts it has not answered yet. Figures: benchmarks/bench_distill.py.

The loss on a row with a teacher distribution is the cross-entropy against it (the KL
divergence up to a constant), hand-written here because the one loop's objective is the
output driver's and no library wraps a soft-target objective for it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from llmos.core.errors import DataError
from llmos.core.progress import Progress
from llmos.spec.schema import TaskSpec
from llmos.store.db import Store

BLOCK = 64  # texts per cached block of teacher answers


def teacher_labels(store: Store, spec: TaskSpec, train: pd.DataFrame) -> tuple[Any, list[str]]:
    """The teacher's model version and labels, checked against the spec's labels (the
    output's declared `labels`, else the training rows'): one line naming both when they
    differ. Reads the teacher's config only (no torch)."""
    from llmos.models.build import read_model_config
    from llmos.spec.tasks import task_rules
    from llmos.store.models import get_model, model_folder

    assert spec.distill is not None
    row = get_model(store, spec.distill.teacher)
    config = read_model_config(model_folder(store, row))
    output = config.get("output") or {}
    if not task_rules(row.task).distillable or output.get("type") != "category":
        raise DataError(
            f"distill.teacher {row.ref!r} is a {row.task} model; the teacher must be a "
            "single-label text classifier"
        )
    theirs = [str(label) for label in output.get("labels", [])]
    declared = getattr(spec.output, "labels", None)
    ours = list(declared) if declared else sorted(train[spec.output.name].astype(str).unique())
    if set(theirs) != set(ours):
        missing, extra = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
        parts = []
        if missing:
            parts.append(f"lacks {', '.join(map(repr, missing[:5]))}")
        if extra:
            parts.append(f"has {', '.join(map(repr, extra[:5]))} that the spec does not")
        raise DataError(
            f"distill.teacher {row.ref!r} predicts other labels than output {spec.output.name!r}: "
            f"it {' and '.join(parts)}; distil from a teacher trained on the same labels"
        )
    return row, theirs


def unlabelled_texts(store: Store, spec: TaskSpec) -> tuple[Any, list[str]]:
    """The unlabelled dataset and its texts (empty cells dropped), checked for the column."""
    from llmos.store.datasets import get_dataset, load_frame

    assert spec.distill is not None
    dataset = get_dataset(store, spec.distill.unlabelled)
    frame = load_frame(store, dataset)
    column = spec.text_input.name
    if column not in frame.columns:
        raise DataError(
            f"distill.unlabelled {dataset.ref}: text column {column!r} not found; "
            f"columns are {', '.join(map(str, frame.columns))}"
        )
    texts = frame[column].dropna().astype(str).tolist()
    if not texts:
        raise DataError(f"distill.unlabelled {dataset.ref}: column {column!r} has no text")
    return dataset, texts


def teacher_probabilities(
    store: Store, teacher: Any, texts: Sequence[str], progress: Progress
) -> tuple[Any, int, float]:
    """The teacher's label probabilities [N, labels] (in the teacher's label order), how
    many texts were answered from the cache, and the seconds spent asking the teacher."""
    import torch

    from llmos.store.models import model_folder
    from llmos.train.predict import Predictor

    cache = (
        store.plain_dir(store.settings.home / "distill") / f"{teacher.name}-v{teacher.version}-{teacher.id}"
    )
    cache.mkdir(parents=True, exist_ok=True)
    predictor: Predictor | None = None
    blocks, cached, seconds = [], 0, 0.0
    progress.start(f"teacher {teacher.ref}", len(texts))
    for start in range(0, len(texts), BLOCK):
        chunk = list(texts[start : start + BLOCK])
        digest = hashlib.sha256(json.dumps(chunk).encode()).hexdigest()[:24]
        path = cache / f"{digest}.pt"
        if path.exists():
            blocks.append(torch.load(path))
            cached += len(chunk)
        else:
            if predictor is None:
                predictor = Predictor.from_folder(model_folder(store, teacher), store.settings.artifacts_dir)
            began = time.perf_counter()
            probs = predictor.output.probabilities(predictor.logits(chunk)).float().cpu()
            seconds += time.perf_counter() - began
            partial = path.with_suffix(".part")
            torch.save(probs, partial)
            partial.replace(path)  # a block is cached whole or not at all
            blocks.append(probs)
        progress.advance(len(chunk))
    progress.finish()
    return torch.cat(blocks), cached, seconds


class SoftTargets:
    """The loop's objective for a mix of hard labels (validation, long targets) and
    probability rows (training: one-hot for labelled rows, the teacher's for the rest)."""

    token_level = False

    def __init__(self, output: Any) -> None:
        self.output = output

    def batch_targets(self, inputs: dict[str, Any], targets: Any, batch: Sequence[int]) -> Any:
        return targets[list(batch)]

    def loss(self, logits: Any, targets: Any) -> Any:
        if not targets.is_floating_point():
            return self.output.loss(logits, targets)
        return -(targets * logits.float().log_softmax(-1)).sum(-1).mean()

    def quick_metrics(self, logits: Any, targets: Any) -> dict[str, float]:
        return dict(self.output.quick_metrics(logits, targets))


def distil(job: Any) -> tuple[Path, dict[str, Any], list[dict[str, float]], float]:
    """Train the spec's student on the teacher's probabilities over the unlabelled rows and
    the training rows' labels; self-train for `rounds`; evaluate and write the model folder
    (an ordinary classifier: it predicts, serves and adapts like any other)."""
    import torch

    from llmos.train.loop import Rows, fit, steps_per_epoch
    from llmos.train.parts import fit_output
    from llmos.train.predict import Predictor
    from llmos.train.workflow import loop_settings, training_summary, write_report
    from llmos.train.workflows.text_classification import classifier_parts

    spec, prepared, progress, store = job.spec, job.prepared, job.progress, job.store
    cfg, splits = spec.distill, prepared.splits
    assert cfg is not None
    teacher, labels = teacher_labels(store, spec, splits.train)
    _, texts = unlabelled_texts(store, spec)
    output = fit_output(spec, splits.train[spec.output.name])
    output.encode(splits.test[output.column], prepared.test_source)  # unseen test labels fail now
    probs, cached, teacher_seconds = teacher_probabilities(store, teacher, texts, progress)
    order = [labels.index(label) for label in output.labels]  # the teacher's order to the student's
    probs = probs[:, order]
    soft = probs.clamp_min(1e-12) ** (1.0 / cfg.temperature)
    soft = soft / soft.sum(-1, keepdim=True)
    hard = output.encode(splits.train[output.column], prepared.train_source)
    labelled = torch.nn.functional.one_hot(hard, output.num_outputs).float()

    column = spec.text_input.name
    frame = pd.concat([splits.train[[column]], pd.DataFrame({column: texts})], ignore_index=True)
    cfg_train = spec.train
    total_steps = steps_per_epoch(len(frame), cfg_train.batch_size, cfg_train.gradient_accumulation)
    total_steps *= cfg_train.epochs
    val_rows = None
    history: list[dict[str, float]] = []
    rounds: list[dict[str, Any]] = []
    targets = torch.cat([labelled, soft])
    train_seconds = 0.0
    for round_ in range(cfg.rounds + 1):
        parts = classifier_parts(spec, splits.train, output, prepared, total_steps)
        driver, model = parts.inputs, parts.model
        features = driver.encode_frame(frame, prepared.train_source)
        rows = Rows(features, [driver.length(f) for f in features], targets)
        if val_rows is None and splits.validation is not None:
            from llmos.train.workflow import encode_rows

            val_rows = encode_rows(driver, output, splits.validation, prepared.val_source)
        what = "distilling" if round_ == 0 else f"self-training round {round_}"
        progress.log(
            f"{what} {spec.name}: {parts.base_model} + {parts.method} on {len(hard)} labelled and "
            f"{len(texts)} unlabelled rows (teacher {teacher.ref})"
        )
        result = fit(
            model,
            driver.collate,
            SoftTargets(output),
            rows,
            loop_settings(cfg_train, spec.method.type),
            prepared.placement,
            validation=val_rows,
            checkpoint_dir=job.run_dir / f"checkpoints-{round_}",
            progress=progress,
        )
        history += [{**h, "round": round_} for h in result.history]
        train_seconds += result.train_seconds
        predictor = Predictor(model, driver, output, prepared.placement, cfg_train.eval_batch_size)
        student = output.probabilities(predictor.logits(texts)).float().cpu()
        agreement = float((student.argmax(-1) == probs.argmax(-1)).float().mean())
        record: dict[str, Any] = {"round": round_, "teacher_agreement": round(agreement, 4)}
        if round_ < cfg.rounds:  # the next round's targets: the student's confident labels
            sure = student.max(-1).values >= cfg.confidence
            pseudo = torch.nn.functional.one_hot(student.argmax(-1), output.num_outputs).float()
            targets = torch.cat([labelled, torch.where(sure.unsqueeze(-1), pseudo, soft)])
            record["pseudo_labelled"] = int(sure.sum())
        rounds.append(record)
    metrics = predictor.evaluate(splits.test, prepared.test_source, progress)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    metrics.update(training_summary(result, trainable, total))
    metrics["train_seconds"] = round(train_seconds, 2)
    metrics["distill"] = {
        "teacher": teacher.ref,
        "labelled_rows": len(hard),
        "unlabelled_rows": len(texts),
        "teacher_cached_rows": cached,
        "teacher_seconds": round(teacher_seconds, 2),
        "temperature": cfg.temperature,
        "rounds": rounds,
    }
    folder = job.run_dir / "model"
    parts.save(folder)
    write_report(
        folder, spec, metrics, history, f"{spec.name} on {prepared.test_source}", result.step_metrics
    )
    return folder, metrics, history, train_seconds
