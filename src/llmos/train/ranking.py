"""Evaluation of recommenders as the field does it: a split chosen in the spec, full
ranking over every item (no sampled negatives) with each user's training items
filtered out, and the usual top-k metrics.

Splits (`recommendation.evaluation.protocol`):
- `random`: a seeded random share of every user's interactions (at least one kept for
  training; users with one interaction stay whole in training), the stratified split
  of Microsoft Recommenders' MovieLens benchmark;
- `leave-last`: each user's latest interaction (by timestamp) is the test item;
- `temporal`: one global time cut; what comes after it is the test set (test users
  who never appear before it are counted and left out: no model knows them).

Metrics at k, averaged over test users (binary relevance): NDCG@k, Recall@k (hits over
the user's test items), HR@k (at least one hit), MAP@k (average precision over
min(k, test items)), MRR (1 / rank of the best-ranked test item in the full ranking),
catalogue coverage (share of items recommended to anyone) and popularity bias (mean
training popularity of recommended items over the catalogue's mean). Hand-written:
these are a few lines of numpy over a score matrix, where the libraries that have them
(Recommenders, RecBole) would bring their own data model for one loop over users.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from llmos.modalities.interactions import Interactions


def split(data: Interactions, protocol: str, test: float, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """A boolean mask of the test rows, and what the split did (for the model's record)."""
    n = len(data)
    mask = np.zeros(n, bool)
    order = np.argsort(data.times, kind="stable") if data.times is not None else np.arange(n)
    if protocol == "temporal":
        assert data.times is not None
        cut = float(np.quantile(data.times, 1 - test))
        mask = data.times > cut
        seen = set(data.users[~mask].tolist())
        mask &= np.isin(data.users, list(seen))
        record = {"protocol": protocol, "cut": cut}
    else:
        rng = np.random.default_rng(seed)
        by_user: dict[int, list[int]] = {}
        for row in order:
            by_user.setdefault(int(data.users[row]), []).append(int(row))
        for rows in by_user.values():
            if len(rows) < 2:
                continue
            if protocol == "leave-last":
                mask[rows[-1]] = True
            else:
                held = min(len(rows) - 1, max(1, round(len(rows) * test)))
                mask[rng.choice(rows, held, replace=False)] = True
        record = {"protocol": protocol, "test": test if protocol == "random" else None, "seed": seed}
    record.update(train_rows=int((~mask).sum()), test_rows=int(mask.sum()))
    return mask, record


def histories(data: Interactions, n_users: int) -> list[np.ndarray]:
    """Each user's items, oldest first (in row order without timestamps)."""
    order = np.argsort(data.times, kind="stable") if data.times is not None else np.arange(len(data))
    users, items = data.users[order], data.items[order]
    grouped = np.argsort(users, kind="stable")
    bounds = np.searchsorted(users[grouped], np.arange(n_users + 1))
    return [items[grouped[bounds[u] : bounds[u + 1]]] for u in range(n_users)]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The indices of the k best scores of each row, best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    best = np.take_along_axis(scores, part, 1)
    return np.take_along_axis(part, np.argsort(-best, axis=1, kind="stable"), 1)


def evaluate(
    score: Callable[[np.ndarray, Sequence[np.ndarray]], np.ndarray],
    train: Interactions,
    test: Interactions,
    n_users: int,
    n_items: int,
    k: int,
    batch: int = 256,
    restrict: np.ndarray | None = None,
) -> dict[str, Any]:
    """Ranking metrics of `score` (a model's `scores`) on the test interactions;
    `restrict` (item indices) ranks those items only (the cold-start experiment)."""
    seen = histories(train, n_users)
    wanted: dict[int, set[int]] = {}
    for u, i in zip(test.users.tolist(), test.items.tolist()):
        wanted.setdefault(u, set()).add(i)
    users = np.array(sorted(wanted), np.int64)
    popularity = np.bincount(train.items, minlength=n_items).astype(np.float64)
    allowed = None
    if restrict is not None:
        allowed = np.full(n_items, False)
        allowed[restrict] = True
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    totals = dict.fromkeys(("ndcg", "recall", "hr", "map", "mrr"), 0.0)
    recommended: set[int] = set()
    rec_popularity = 0.0
    for start in range(0, len(users), batch):
        chunk = users[start : start + batch]
        s = np.asarray(score(chunk, [seen[u] for u in chunk]), np.float64)
        for r, u in enumerate(chunk):
            s[r, seen[u]] = -np.inf
        if allowed is not None:
            s[:, ~allowed] = -np.inf
        best = top_k(s, k)
        for r, u in enumerate(chunk):
            relevant = wanted[int(u)]
            hits = np.isin(best[r], list(relevant))
            n_rel = len(relevant)
            totals["hr"] += float(hits.any())
            totals["recall"] += hits.sum() / n_rel
            ideal = discounts[: min(k, n_rel)].sum()
            totals["ndcg"] += (discounts[: len(hits)] * hits).sum() / ideal
            precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
            totals["map"] += (precision * hits).sum() / min(k, n_rel)
            rel_scores = s[r, list(relevant)]
            totals["mrr"] += 1.0 / (1 + (s[r] > rel_scores.max()).sum())
            recommended.update(best[r].tolist())
            rec_popularity += popularity[best[r]].mean()
    n = max(len(users), 1)
    catalogue = len(restrict) if restrict is not None else n_items
    return {
        f"ndcg@{k}": round(float(totals["ndcg"]) / n, 5),
        f"recall@{k}": round(float(totals["recall"]) / n, 5),
        f"hr@{k}": round(float(totals["hr"]) / n, 5),
        f"map@{k}": round(float(totals["map"]) / n, 5),
        "mrr": round(float(totals["mrr"]) / n, 5),
        "coverage": round(len(recommended) / max(catalogue, 1), 5),
        "popularity_bias": round(float(rec_popularity) / n / max(float(popularity.mean()), 1e-9), 3),
        "test_users": len(users),
    }
