"""Metrics checked against independent computations and scikit-learn."""

import json

import numpy as np
from sklearn.metrics import classification_report

from llmos.train.metrics import classification_metrics, plot_confusion_matrix


def test_metrics_match_hand_computation_and_sklearn(tmp_path):
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c", "d"]
    y_true = rng.integers(0, 4, 500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 4, 500))
    m = classification_metrics(y_true, y_pred, labels)

    assert m["accuracy"] == round(float((y_true == y_pred).mean()), 4)
    f1s, supports = [], []
    for k, label in enumerate(labels):
        tp = int(((y_pred == k) & (y_true == k)).sum())
        precision = tp / max(1, int((y_pred == k).sum()))
        recall = tp / max(1, int((y_true == k).sum()))
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        supports.append(int((y_true == k).sum()))
        assert m["per_class"][label]["precision"] == round(precision, 4)
        assert m["per_class"][label]["recall"] == round(recall, 4)
    assert m["macro_f1"] == round(float(np.mean(f1s)), 4)
    assert m["weighted_f1"] == round(float(np.average(f1s, weights=supports)), 4)
    report = classification_report(y_true, y_pred, target_names=labels, output_dict=True)
    assert abs(m["weighted_f1"] - report["weighted avg"]["f1-score"]) < 1e-4

    matrix = np.array(m["confusion_matrix"]["matrix"])
    assert matrix.sum() == 500 and np.trace(matrix) == (y_true == y_pred).sum()
    assert matrix[1, 2] == int(((y_true == 1) & (y_pred == 2)).sum())

    png = plot_confusion_matrix(m["confusion_matrix"], tmp_path / "cm.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    json.dumps(m)


def test_labels_absent_from_predictions_still_listed():
    m = classification_metrics(np.array([0, 0, 1]), np.array([0, 0, 0]), ["x", "y", "z"])
    assert m["per_class"]["z"]["support"] == 0
    assert m["per_class"]["y"]["recall"] == 0.0
    assert len(m["confusion_matrix"]["matrix"]) == 3
