"""Active learning: which unlabelled rows are worth a person's time to label.

Uncertainty alone picks near-duplicates (ten phrasings of the same confusing request);
diversity alone ignores what the model already knows. So: the `pool_factor * k` rows the
model is least sure of (smallest top-two margin, or highest entropy, from the one
predictor), then k-means++ seeding (scikit-learn's `kmeans_plusplus`) over their
normalised embeddings, weighted by uncertainty, picks k of them that are spread out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from llmos.core.errors import DataError, UsageError
from llmos.store.db import Store

STRATEGIES = ("margin", "entropy")


def uncertainty(probs: np.ndarray, strategy: str = "margin") -> np.ndarray:
    """Per row, higher is less certain: 1 - (top-1 minus top-2 probability), or the
    entropy normalised to [0, 1]."""
    if strategy not in STRATEGIES:
        raise UsageError(f"strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if strategy == "margin":
        top = np.sort(probs, axis=1)[:, -2:]
        return 1.0 - (top[:, 1] - top[:, 0])
    p = np.clip(probs, 1e-12, 1.0)
    return -(p * np.log(p)).sum(1) / np.log(probs.shape[1])


def select_informative(
    probs: np.ndarray,
    embeddings: np.ndarray,
    k: int,
    strategy: str = "margin",
    pool_factor: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """Indices of k rows: uncertain, and diverse among the uncertain; most uncertain first."""
    from sklearn.cluster import kmeans_plusplus

    scores = uncertainty(probs, strategy)
    k = min(k, len(scores))
    pool = np.argsort(-scores, kind="stable")[: min(len(scores), max(k, pool_factor * k))]
    if len(pool) <= k:
        return pool
    vectors = embeddings[pool] / np.maximum(np.linalg.norm(embeddings[pool], axis=1, keepdims=True), 1e-12)
    _, chosen = kmeans_plusplus(vectors, n_clusters=k, sample_weight=scores[pool] + 1e-6, random_state=seed)
    picked = pool[chosen]
    return picked[np.argsort(-scores[picked], kind="stable")]


def probabilities_and_embeddings(predictor: Any, frame: Any) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and the pooled sentence vectors the head reads, in one pass: the
    head is swapped for an identity while the encoder runs, then applied to the vectors."""
    import torch
    from torch import nn

    model = predictor.model
    head = model.head
    model.head = nn.Identity()
    try:
        pooled = predictor.logits(frame[predictor.columns])
    finally:
        model.head = head
    with torch.no_grad():
        logits = head(pooled.to(next(head.parameters()).device)).float().cpu()
    probs = predictor.output.probabilities(logits).numpy()
    return probs, pooled.float().numpy()


def suggest_rows(
    store: Store, dataset: str, model: str, k: int, strategy: str = "margin", out: Path | None = None
) -> dict[str, Any]:
    """The k rows of `dataset` (those without a label, when it has the model's label column)
    most worth labelling for `model`; written to `out` (CSV or JSONL) with an empty label."""
    from llmos.models.build import read_model_config
    from llmos.models.kinds import kind_of
    from llmos.store.datasets import get_dataset, load_frame
    from llmos.store.models import get_model, model_folder
    from llmos.train.predict import Predictor

    if k < 1:
        raise UsageError(f"--k must be at least 1 (got {k})")
    if out is not None and out.suffix.lower() not in (".csv", ".jsonl"):
        raise UsageError(f"--out {out}: use a .csv or .jsonl file")
    version = get_model(store, model)
    folder = model_folder(store, version)
    config = read_model_config(folder)
    if not kind_of(config).adaptable:
        raise UsageError(f"model {version.ref}: label suggest needs a fine-tuned text classifier")
    ds = get_dataset(store, dataset)
    frame = load_frame(store, ds)
    text, label = config["input"]["column"], config["output"]["column"]
    if text not in frame.columns:
        raise DataError(
            f"dataset {ds.ref}: text column {text!r} not found; columns are {', '.join(frame.columns)}"
        )
    if label in frame.columns:  # only rows nobody labelled yet
        frame = frame[frame[label].isna() | (frame[label].astype(str).str.strip() == "")]
    frame = frame.reset_index(drop=True)
    if frame.empty:
        raise DataError(f"dataset {ds.ref}: every row already has a {label!r} label; nothing to suggest")
    predictor = Predictor.from_folder(folder, store.settings.artifacts_dir)
    probs, vectors = probabilities_and_embeddings(predictor, frame)
    picked = select_informative(probs, vectors, k, strategy)
    scores = uncertainty(probs, strategy)
    labels = predictor.output.labels
    chosen = frame.iloc[picked].copy()
    chosen[label] = ""
    rows = [
        {
            "row": int(i),
            "text": frame.at[int(i), text],
            "predicted": labels[int(probs[i].argmax())],
            "uncertainty": round(float(scores[i]), 4),
        }
        for i in picked
    ]
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        if out.suffix.lower() == ".csv":
            chosen.to_csv(tmp, index=False)
        else:
            chosen.to_json(tmp, orient="records", lines=True, force_ascii=False)
        tmp.replace(out)
    return {
        "dataset": ds.ref,
        "model": version.ref,
        "strategy": strategy,
        "candidates": len(frame),
        "rows": rows,
        "label_column": label,
        "records": json.loads(chosen.to_json(orient="records", force_ascii=False, date_format="iso")),
        "out": str(out) if out else None,
    }
