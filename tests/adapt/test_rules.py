"""The pure parts of adaptation: the gate's rule, the feedback split, the replay sample and
the active-learning selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmos.adapt.active import select_informative, uncertainty
from llmos.adapt.continual import replay_sample, split_feedback
from llmos.adapt.gate import gate


def test_gate_needs_better_feedback_and_original_within_tolerance():
    parent = {"original_accuracy": 0.90, "feedback_accuracy": 0.40}
    assert gate(parent, {"original_accuracy": 0.895, "feedback_accuracy": 0.80}, 1.0).promote
    dropped = gate(parent, {"original_accuracy": 0.885, "feedback_accuracy": 0.80}, 1.0)
    assert not dropped.promote and "dropped more than 1 points" in dropped.reasons[1]
    same = gate(parent, {"original_accuracy": 0.95, "feedback_accuracy": 0.40}, 1.0)
    assert not same.promote and "not better" in same.reasons[0]
    assert gate(parent, {"original_accuracy": 0.885, "feedback_accuracy": 0.80}, 2.0).promote


def test_feedback_split_is_deterministic_stratified_and_disjoint():
    frame = pd.DataFrame(
        {"text": [f"t{i}" for i in range(43)], "label": ["a"] * 20 + ["b"] * 20 + ["c"] * 2 + ["d"]}
    )
    train, held = split_feedback(frame, "label", 0.25, 42)
    again_train, again_held = split_feedback(frame, "label", 0.25, 42)
    assert held["text"].tolist() == again_held["text"].tolist()
    assert train["text"].tolist() == again_train["text"].tolist()
    assert held["label"].value_counts().to_dict() == {"a": 5, "b": 5, "c": 1}
    assert "d" not in set(held["label"])  # a single row trains
    assert set(train["text"]).isdisjoint(held["text"]) and len(train) + len(held) == len(frame)


def test_replay_sample_keeps_label_proportions():
    frame = pd.DataFrame({"text": range(300), "label": ["a"] * 200 + ["b"] * 90 + ["c"] * 10})
    sample = replay_sample(frame, "label", 30, 0)
    assert sample["label"].value_counts().to_dict() == {"a": 20, "b": 9, "c": 1}
    assert replay_sample(frame, "label", 0, 0).empty


def test_selection_prefers_uncertain_rows_and_spreads_them():
    rng = np.random.default_rng(0)
    probs = np.full((100, 3), [0.98, 0.01, 0.01])
    probs[:20] = [0.4, 0.35, 0.25]  # the uncertain ones
    # uncertain rows form two tight clusters of 10: a diverse pick of 2 takes one of each
    emb = np.vstack(
        [rng.normal(0, 0.01, (10, 4)) + np.eye(4)[0], rng.normal(0, 0.01, (10, 4)) + np.eye(4)[1]]
    )
    emb = np.vstack([emb, rng.normal(0, 1, (80, 4))])
    picked = select_informative(probs, emb, 2, pool_factor=10)
    assert set(picked) < set(range(20))
    assert {int(i) // 10 for i in picked} == {0, 1}
    assert uncertainty(np.array([[0.5, 0.5], [1.0, 0.0]]), "entropy").round(3).tolist() == [1.0, 0.0]


def test_the_loop_adds_the_regularizer_to_every_batch_loss(tiny_model_dir):
    """The hook sees every training batch, and its term is part of the loss that is checked
    and back-propagated (a NaN term stops training like a NaN loss would)."""
    import torch

    from llmos.core.errors import TrainingError
    from llmos.models.build import build_classifier
    from llmos.spec.schema import FullMethod
    from llmos.train.device import resolve_placement
    from llmos.train.loop import fit
    from tests.conftest import loop_settings, tiny_task

    task = tiny_task(tiny_model_dir, 48)
    model = build_classifier(task.resolved, FullMethod(), 3, "mean", 0.0, 10)
    seen: list[int] = []

    def counting(logits, batch):
        seen.extend(batch)
        return logits.sum() * 0.0

    placement = resolve_placement("cpu", "fp32")
    fit(
        model,
        task.driver.collate,
        task.output,
        task.rows,
        loop_settings(epochs=1),
        placement,
        regularizer=counting,
    )
    assert sorted(seen) == list(range(48))
    with pytest.raises(TrainingError, match="loss became nan at epoch 1, batch 1"):
        fit(
            model,
            task.driver.collate,
            task.output,
            task.rows,
            loop_settings(epochs=1),
            placement,
            regularizer=lambda logits, batch: torch.tensor(float("nan")),
        )
