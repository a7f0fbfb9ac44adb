"""Continual fine-tuning: a deployed classifier learns from new labelled feedback without
forgetting its original task, and the gate decides whether the result goes live.

Forgetting is held off by rehearsal (a replay buffer sampled, stratified by label, from
the model's original training split, found through its lineage) and optionally by EWC
(a quadratic anchor on the trainable parameters weighted by their Fisher information on
the old data) or LwF (distillation towards the old model's outputs). Both penalties join
the one training loop through its `regularizer` hook; no second loop exists.

The feedback is split deterministically (per label, a fixed fraction held out), so the
gate judges the candidate on feedback it never trained on. The original task's test set
is the one recorded at training time: the split is recomputed from the recorded dataset
versions and seed and checked against the recorded row digest, so it stays frozen.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from llmos.core.errors import DataError, StoreError, UsageError
from llmos.core.progress import Progress, SilentProgress
from llmos.store.db import Store
from llmos.store.schema import ModelVersion

FEEDBACK_ID = "feedback_id"


@dataclass
class AdaptSettings:
    """How `llmos adapt` trains and judges a candidate."""

    epochs: int = 3
    replay_ratio: float = 2.0  # replayed original rows per new training row (0: naive fine-tuning)
    ewc: float = 0.0  # EWC strength (0: off)
    lwf: float = 1.0  # LwF distillation weight on the replayed rows (0: off)
    holdout: float = 0.25  # fraction of each label's feedback kept out of training for the gate
    tolerance: float = 1.0  # points of original-task accuracy the candidate may lose
    new_labels: bool = False  # grow the head for feedback labels the model does not know
    lr: float | None = None  # default: the method's learning rate
    seed: int = 42


@dataclass
class AdaptOutcome:
    deployment: str
    parent: str
    candidate: str
    decision: str  # promote | reject
    reasons: list[str]
    metrics: dict[str, Any]
    lineage: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def split_feedback(
    frame: pd.DataFrame, label: str, fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, held out): per label, round(fraction * n) rows held out (at least one, and
    at least one left to train on), chosen by a seeded shuffle; a label with a single row
    trains only. Same input, same split."""
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for _, group in frame.groupby(frame[label].astype(str), sort=True):
        n_hold = min(len(group) - 1, max(1, round(len(group) * fraction))) if fraction > 0 else 0
        if n_hold:
            held.extend(rng.permutation(group.index.to_numpy())[:n_hold].tolist())
    mask = frame.index.isin(held)
    return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)


def replay_sample(frame: pd.DataFrame, label: str, n: int, seed: int) -> pd.DataFrame:
    """About `n` rows of `frame`, each label in its original proportion (at least one row)."""
    if n <= 0 or frame.empty:
        return frame.iloc[:0]
    share = min(1.0, n / len(frame))
    parts = [
        group.sample(n=max(1, round(len(group) * share)), random_state=seed)
        for _, group in frame.groupby(frame[label].astype(str), sort=True)
    ]
    return pd.concat(parts).reset_index(drop=True)


def original_splits(store: Store, model: ModelVersion) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The (train, test) rows `model`'s original run used, rebuilt from its recorded dataset
    versions and split and checked against the recorded row digests."""
    from llmos.spec import parse_spec
    from llmos.store.datasets import get_dataset, get_dataset_by_id, load_frame
    from llmos.train.run import make_splits

    if model.train_dataset_id is None:
        raise StoreError(f"model {model.ref} records no training dataset: it cannot be adapted with replay")
    spec = parse_spec(model.spec, f"model {model.ref}")
    train = load_frame(store, get_dataset_by_id(store, model.train_dataset_id))
    test = (
        None
        if model.test_dataset_id is None
        else load_frame(store, get_dataset_by_id(store, model.test_dataset_id))
    )
    val_ref = spec.data.validation
    validation = (
        None
        if val_ref is None
        else load_frame(store, get_dataset(store, model.split.get("validation") or val_ref))
    )
    splits = make_splits(spec, train, test, validation)
    recorded = model.split.get("index_digest")
    if recorded and splits.record["index_digest"] != recorded:
        raise StoreError(
            f"model {model.ref}: its original train/test split cannot be rebuilt (row digests differ); "
            "the recorded datasets changed"
        )
    return splits.train, splits.test


def accuracy(predictor: Any, frame: pd.DataFrame, label: str) -> float:
    """Share of rows whose predicted label is the row's label (labels unknown to the model
    count as wrong, which is what the users who gave them saw)."""
    if frame.empty:
        return 0.0
    predicted = [p["label"] for p in predictor.predict(frame[predictor.columns])]
    return float(np.mean(np.array(predicted) == frame[label].astype(str).to_numpy()))


def grow_head(model: Any, new: int) -> None:
    """Add `new` output rows to a classifier's head: old rows are copied, new ones start
    at the mean old row with the smallest old bias, so they begin no more likely than any."""
    import torch
    from torch import nn

    old = model.head
    head = nn.Linear(old.in_features, old.out_features + new)
    with torch.no_grad():
        head.weight[: old.out_features] = old.weight
        head.bias[: old.out_features] = old.bias
        head.weight[old.out_features :] = old.weight.mean(0) + 0.01 * torch.randn(new, old.in_features)
        head.bias[old.out_features :] = old.bias.min()
    model.head = head


def adapt_model(
    store: Store,
    deployment: str,
    feedback: pd.DataFrame,
    settings: AdaptSettings | None = None,
    progress: Progress | None = None,
    *,
    job_id: int | None = None,
    actor: str = "",
) -> AdaptOutcome:
    """Fine-tune the model `deployment` serves on `feedback` (its input columns and the
    correct label in the model's label column or `label`; `feedback_id` when it came from
    the store) with replay and the chosen regularisers; register the candidate with its
    lineage; gate it; promote or reject, recording the decision."""
    import torch

    from llmos.adapt.gate import gate
    from llmos.adapt.regularizers import ewc_regularizer, lwf_regularizer
    from llmos.modalities import OUTPUT_DRIVERS
    from llmos.modalities.text import TextDriver
    from llmos.models.build import load_classifier, read_model_config, save_classifier
    from llmos.models.kinds import kind_of
    from llmos.store.adaptation import record_decision
    from llmos.store.deployments import DEPLOYMENT_KINDS, get_deployment
    from llmos.store.models import get_model, model_folder, register_model
    from llmos.train.device import resolve_placement
    from llmos.train.loop import LoopSettings, Rows, fit, predict_logits, seed_everything
    from llmos.train.predict import Predictor
    from llmos.train.run import loop_settings, new_run_dir

    settings = settings or AdaptSettings()
    progress = progress or SilentProgress()
    target = get_deployment(store, deployment)
    if DEPLOYMENT_KINDS[target.kind].recommends:  # clicks on recommendations: same gate, own path
        from llmos.adapt.recommendation import adapt_recommender

        return adapt_recommender(store, deployment, feedback, settings, progress, job_id=job_id, actor=actor)
    if not DEPLOYMENT_KINDS[target.kind].labels:
        raise UsageError(
            f"deployment {deployment!r} serves a {target.kind}: adapt supports classifiers only for now"
        )
    parent = get_model(store, target.model)
    folder = model_folder(store, parent)
    config = read_model_config(folder)
    if not kind_of(config).adaptable:
        raise UsageError(
            f"model {parent.ref} ({config.get('task')}, {config['method']}): adapt supports fine-tuned "
            "text classifiers only for now"
        )
    label = config["output"]["column"]
    text = config["input"]["column"]
    rows = feedback.rename(columns={"label": label}) if label not in feedback.columns else feedback
    for column in (text, label):
        if column not in rows.columns:
            raise DataError(
                f"new feedback rows: column {column!r} not found; columns are {', '.join(rows.columns)}"
            )
    if rows.empty:
        raise UsageError(f"no new feedback for deployment {deployment!r}: nothing to adapt on")
    rows = rows.assign(**{label: rows[label].astype(str)})
    known = list(config["output"]["labels"])
    unknown = sorted(set(rows[label]) - set(known))
    if unknown and not settings.new_labels:
        raise DataError(
            f"new feedback has labels outside model {parent.ref}'s label set: "
            + ", ".join(repr(u) for u in unknown[:5])
            + "; declare them in the spec's `labels` or run `llmos adapt --new-labels`"
        )

    seed_everything(settings.seed)
    torch_threads = torch.get_num_threads()
    placement = resolve_placement("auto", "auto")
    fb_train, fb_held = split_feedback(rows, label, settings.holdout, settings.seed)
    if fb_held.empty:
        raise UsageError(
            f"deployment {deployment!r}: {len(rows)} feedback rows leave none held out for the gate; "
            "collect more feedback (at least two rows of a label)"
        )
    old_train, old_test = original_splits(store, parent)
    replay = replay_sample(old_train, label, round(settings.replay_ratio * len(fb_train)), settings.seed)
    progress.log(
        f"adapting {parent.ref} for {deployment}: {len(fb_train)} feedback rows to train, "
        f"{len(fb_held)} held out, {len(replay)} replayed, ewc {settings.ewc:g}, lwf {settings.lwf:g} "
        f"({torch_threads} threads)"
    )

    loaded = load_classifier(folder, store.settings.artifacts_dir, trainable=True)
    model = loaded.model
    driver = TextDriver(text, loaded.tokenizer, config["input"]["max_length"])
    output = OUTPUT_DRIVERS["category"].from_state(config["output"])
    before = Predictor(model, driver, output, placement, 128)
    parent_metrics = {
        "original_accuracy": accuracy(before, old_test, label),
        "feedback_accuracy": accuracy(before, fb_held, label),
    }
    progress.log(f"{parent.ref}: {parent_metrics}")

    train_frame = pd.concat([fb_train[[text, label]], replay[[text, label]]], ignore_index=True)
    old_features = driver.encode_frame(train_frame, "adapt rows")
    old_lengths = [driver.length(f) for f in old_features]
    old_logits = None
    if settings.lwf > 0:
        old_logits = predict_logits(model, driver.collate, old_features, old_lengths, 128, placement)
    if unknown:
        grow_head(model, len(unknown))
        config["output"]["labels"] = known + unknown
        output = OUTPUT_DRIVERS["category"].from_state(config["output"])
    train_rows = Rows(old_features, old_lengths, output.encode(train_frame[label], "adapt rows"))
    penalties = []
    if settings.ewc > 0:
        anchor_frame = replay if not replay.empty else replay_sample(old_train, label, 256, settings.seed)
        anchor_features = driver.encode_frame(anchor_frame, "replay rows")
        anchor_rows = Rows(
            anchor_features,
            [driver.length(f) for f in anchor_features],
            output.encode(anchor_frame[label], "replay"),
        )
        penalties.append(ewc_regularizer(model, driver.collate, anchor_rows, output, placement, settings.ewc))
    if old_logits is not None:
        replayed = range(len(fb_train), len(train_frame)) if not replay.empty else range(len(train_frame))
        penalties.append(lwf_regularizer(old_logits, replayed, settings.lwf))

    def regularizer(logits: Any, batch: Any) -> Any:
        return sum(p(logits, batch) for p in penalties)

    from llmos.spec import parse_spec

    spec = parse_spec(parent.spec, f"model {parent.ref}")
    base: LoopSettings = loop_settings(spec.train, config["method"])
    base.epochs, base.early_stopping, base.checkpoint_every, base.seed = (
        settings.epochs,
        None,
        None,
        settings.seed,
    )
    if settings.lr is not None:
        base.lr = settings.lr
    result = fit(
        model,
        driver.collate,
        output,
        train_rows,
        base,
        placement,
        progress=progress,
        regularizer=regularizer if penalties else None,
    )
    after = Predictor(model, driver, output, placement, 128)
    candidate_metrics = {
        "original_accuracy": accuracy(after, old_test, label),
        "feedback_accuracy": accuracy(after, fb_held, label),
    }
    verdict = gate(parent_metrics, candidate_metrics, settings.tolerance)
    ids = [int(i) for i in rows[FEEDBACK_ID]] if FEEDBACK_ID in rows.columns else []
    held_ids = [int(i) for i in fb_held[FEEDBACK_ID]] if FEEDBACK_ID in fb_held.columns else []
    lineage = {
        "parent": parent.ref,
        "deployment": deployment,
        "feedback_ids": ids,
        "held_out_feedback_ids": held_ids,
        "feedback_rows": len(rows),
        "held_out_rows": len(fb_held),
        "replay_rows": len(replay),
        "new_labels": unknown,
        "settings": asdict(settings),
    }
    metrics = {
        "parent": parent_metrics,
        "candidate": candidate_metrics,
        "train_seconds": round(result.train_seconds, 2),
        "history": result.history,
    }
    run_dir = new_run_dir(store, spec)
    try:
        save_classifier(model, loaded.tokenizer, config, run_dir / "model")
        new_spec = dict(parent.spec)
        if unknown:
            outputs = [dict(o) for o in new_spec["outputs"]]
            outputs[0]["labels"] = known + unknown
            new_spec["outputs"] = outputs
        candidate = register_model(
            store,
            name=parent.name,
            task=parent.task,
            base_model=parent.base_model,
            method=parent.method,
            spec=new_spec,
            folder=run_dir / "model",
            train_dataset_id=parent.train_dataset_id,
            test_dataset_id=parent.test_dataset_id,
            split={**parent.split, "adapt": lineage},
            metrics={
                "accuracy": candidate_metrics["original_accuracy"],
                "feedback_accuracy": candidate_metrics["feedback_accuracy"],
                "history": result.history,
            },
            train_seconds=result.train_seconds,
            job_id=job_id,
        )
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    decision = "promote" if verdict.promote else "reject"
    last_id = max(ids) if ids else None
    record_decision(
        store,
        deployment,
        decision=decision,
        candidate=candidate.ref,
        parent=parent.ref,
        reasons=verdict.reasons,
        metrics={**metrics, "replay_rows": len(replay), "feedback_rows": len(rows)},
        last_feedback_id=last_id,
        job_id=job_id,
        actor=actor,
    )
    progress.log(f"{decision} {candidate.ref}: " + "; ".join(verdict.reasons))
    return AdaptOutcome(deployment, parent.ref, candidate.ref, decision, verdict.reasons, metrics, lineage)
