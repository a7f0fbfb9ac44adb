"""Metrics per kind of output: classification (accuracy, macro/weighted F1, per-class report,
confusion matrix), multi-label, entity-level (seqeval) and regression; `METRICS` picks by
the output driver's `metric_kind`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _per_class(
    labels: list[str], precision: Any, recall: Any, f1: Any, support: Any
) -> dict[str, dict[str, float | int]]:
    return {
        label: {
            "precision": round(float(precision[i]), 4),
            "recall": round(float(recall[i]), 4),
            "f1": round(float(f1[i]), 4),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ids, zero_division=0
    )
    per_class = _per_class(labels, precision, recall, f1, support)
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)), 4),
        "weighted_f1": round(
            float(f1_score(y_true, y_pred, labels=ids, average="weighted", zero_division=0)), 4
        ),
        "num_examples": len(y_true),
        "per_class": per_class,
        "confusion_matrix": {
            "labels": labels,
            "matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        },
    }


def multilabel_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),  # exact-match ratio
        "macro_f1": round(float(f1_score(y_true, y_pred, average="macro", zero_division=0)), 4),
        "weighted_f1": round(float(f1_score(y_true, y_pred, average="weighted", zero_division=0)), 4),
        "micro_f1": round(float(f1_score(y_true, y_pred, average="micro", zero_division=0)), 4),
        "num_examples": len(y_true),
        "per_class": _per_class(labels, precision, recall, f1, support),
    }


def plot_confusion_matrix(confusion: dict[str, Any], path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = confusion["labels"]
    matrix = np.array(confusion["matrix"])
    size = max(5.0, min(30.0, 0.3 * len(labels) + 3))
    fig, ax = plt.subplots(figsize=(size, size))
    row_sums = matrix.sum(1, keepdims=True).clip(min=1)
    shade = matrix / row_sums
    ax.imshow(shade, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(labels) <= 20:
        for (i, j), v in np.ndenumerate(matrix):
            if v:
                colour = "white" if shade[i, j] > 0.5 else "black"
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color=colour)
    ax.set_title(title or "confusion matrix (row-normalised colour, counts)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def entity_metrics(y_true: list[list[str]], y_pred: list[list[str]], labels: list[str]) -> dict[str, Any]:
    """Entity-level precision, recall and F1 (seqeval, conlleval rules: an entity counts
    only when its type and both ends are right), per entity type, and word accuracy."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    y_pred = [p[: len(t)] for p, t in zip(y_pred, y_true)]
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    words = sum(len(t) for t in y_true)
    right = sum(a == b for p, t in zip(y_pred, y_true) for a, b in zip(p, t))
    per_class = {
        kind: {
            "precision": round(float(v["precision"]), 4),
            "recall": round(float(v["recall"]), 4),
            "f1": round(float(v["f1-score"]), 4),
            "support": int(v["support"]),
        }
        for kind, v in report.items()
        if not kind.endswith(" avg")
    }
    return {
        "precision": round(float(precision_score(y_true, y_pred, zero_division=0)), 4),
        "recall": round(float(recall_score(y_true, y_pred, zero_division=0)), 4),
        "f1": round(float(f1_score(y_true, y_pred, zero_division=0)), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, average="macro", zero_division=0)), 4),
        "accuracy": round(right / max(words, 1), 4),  # per word, O included
        "num_examples": len(y_true),
        "num_words": words,
        "per_class": per_class,
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "mae": round(float(mean_absolute_error(y_true, y_pred)), 6),
        "rmse": round(float(np.sqrt(mean_squared_error(y_true, y_pred))), 6),
        "r2": round(float(r2_score(y_true, y_pred)), 4),
        "num_examples": len(y_true),
    }


METRICS = {
    "classification": classification_metrics,
    "multilabel": multilabel_metrics,
    "entities": entity_metrics,
    "regression": regression_metrics,
}


def _words(text: str) -> list[str]:
    import re

    return re.findall(r"\w+", text.lower())


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1: longest common subsequence of lower-cased words.

    Written here rather than taken from `rouge-score`, which would bring nltk and a source
    build for these dozen lines; the tokenisation matches its default (lower-case
    alphanumeric words, no stemming).
    """
    pred, ref = _words(prediction), _words(reference)
    if not pred or not ref:
        return float(pred == ref)
    previous = [0] * (len(ref) + 1)
    for p in pred:
        current = [0]
        for j, r in enumerate(ref):
            current.append(previous[j] + 1 if p == r else max(previous[j + 1], current[j]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, reference: str) -> bool:
    """Equal after lower-casing and collapsing whitespace."""
    return " ".join(prediction.lower().split()) == " ".join(reference.lower().split())
