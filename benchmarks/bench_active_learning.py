"""Active learning against random selection on Banking77: accuracy after labelling N rows.

Both start from the same small labelled seed set (2 rows per intent) and label rows from
the same unlabelled pool in rounds; after each round a classifier is refit. The model is
a frozen all-MiniLM-L6-v2 (sentence vectors computed once) with a logistic-regression
head, so the comparison measures the selection, not training noise. Active selection is
`llmos.adapt.active.select_informative`, the function behind `llmos label suggest`
(top-two margin uncertainty, then k-means++ over the uncertain rows' embeddings);
random draws uniformly from the pool. Several seeds (seed sets and random draws).

Prints a table and writes `benchmarks/results/bench_active_learning.json`.

    python benchmarks/bench_active_learning.py [--pool 4000] [--test 1540] [--seeds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import banking77, machine, minilm_path, stratified_subset, write_result

BUDGETS = (50, 100, 200)
ROUND = 25  # rows labelled per round before the head is refit


def embed(texts: list[str]) -> np.ndarray:
    from llmos.models.llm_classifier import SentenceEmbedder
    from llmos.models.zoo import resolve_model

    embedder = SentenceEmbedder(resolve_model(minilm_path()), max_length=64, batch_size=128)
    parts = [embedder(texts[i : i + 512]).numpy() for i in range(0, len(texts), 512)]
    return np.concatenate(parts)


def fit(x: np.ndarray, y: np.ndarray) -> object:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=10.0, max_iter=2000).fit(x, y)


def full_probs(model: object, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Probabilities over every class (a head fit on fewer classes gives 0 to the others)."""
    probs = np.zeros((len(x), len(classes)))
    cols = np.searchsorted(classes, model.classes_)  # type: ignore[attr-defined]
    probs[:, cols] = model.predict_proba(x)  # type: ignore[attr-defined]
    return probs


def run(
    strategy: str, seed: int, x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray
) -> dict[int, float]:
    from llmos.adapt.active import select_informative

    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    labelled = [int(i) for c in classes for i in rng.choice(np.flatnonzero(y == c), 2, replace=False)]
    pool = np.setdiff1d(np.arange(len(y)), labelled)
    scores: dict[int, float] = {}
    model = fit(x[labelled], y[labelled])
    scores[0] = float((model.predict(xt) == yt).mean())  # type: ignore[attr-defined]
    for done in range(ROUND, max(BUDGETS) + 1, ROUND):
        if strategy == "random":
            picked = rng.choice(pool, ROUND, replace=False)
        else:
            probs = full_probs(model, x[pool], classes)
            picked = pool[select_informative(probs, x[pool], ROUND, seed=seed + done)]
        labelled += [int(i) for i in picked]
        pool = np.setdiff1d(pool, picked)
        model = fit(x[labelled], y[labelled])
        if done in BUDGETS:
            scores[done] = float((model.predict(xt) == yt).mean())  # type: ignore[attr-defined]
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pool", type=int, default=4000, help="unlabelled pool rows (stratified subset of train)"
    )
    parser.add_argument("--test", type=int, default=1540, help="test rows (stratified subset of test)")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    train, test = banking77()
    train, test = stratified_subset(train, args.pool), stratified_subset(test, args.test)
    started = time.perf_counter()
    x, xt = embed(train["text"].tolist()), embed(test["text"].tolist())
    embed_s = time.perf_counter() - started
    y, yt = train["category"].to_numpy(), test["category"].to_numpy()
    results: dict[str, list[dict[int, float]]] = {"random": [], "active": []}
    for seed in range(args.seeds):
        for strategy in results:
            results[strategy].append(run(strategy, seed, x, y, xt, yt))
    table = {}
    print(
        f"\nBanking77, frozen MiniLM + logistic regression; seed set 2 rows x 77 intents; "
        f"pool {len(y)}, test {len(yt)}"
    )
    print(f"{'labelled':>9} {'random':>16} {'active':>16} {'gain':>7}")
    for n in (0, *BUDGETS):
        row = {}
        for strategy, runs in results.items():
            values = np.array([r[n] for r in runs])
            row[strategy] = {"mean": round(float(values.mean()), 4), "std": round(float(values.std()), 4)}
        table[str(n)] = row
        gain = 100 * (row["active"]["mean"] - row["random"]["mean"])
        print(
            f"{n:>9} {100 * row['random']['mean']:>9.1f} ± {100 * row['random']['std']:.1f} "
            f"{100 * row['active']['mean']:>9.1f} ± {100 * row['active']['std']:.1f} {gain:>+6.1f}"
        )
    path = write_result(
        "bench_active_learning",
        {
            "task": "banking77",
            "model": "all-MiniLM-L6-v2 (frozen) + logistic regression",
            "seed_set": "2 rows per intent (154)",
            "round": ROUND,
            "pool_rows": len(y),
            "test_rows": len(yt),
            "seeds": args.seeds,
            "embed_seconds": round(embed_s, 1),
            "accuracy_after_labelling": table,
            "runs": {k: [{str(n): s for n, s in r.items()} for r in v] for k, v in results.items()},
            "machine": machine(),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
