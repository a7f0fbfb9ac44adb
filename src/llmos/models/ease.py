"""`ease`: EASE, the embarrassingly shallow autoencoder (Steck 2019), an item-item weight
matrix in closed form: B = I - P / diag(P) with P = (X'X + l2 I)^-1 over the binary
user-item matrix X, zero diagonal, and a user's scores x_u B.

One dense inverse of the item Gram matrix (numpy/LAPACK); no well-kept library ships
EASE beside llmos's other models (RecBole's needs its own trainer and data model), and it
is a dozen lines. Items with fewer than `min_count` training interactions (default 2)
are left out of the inverse and score below every other item: they are rarely right, and
the inverse's cost grows with the cube of the items kept. On MovieLens latest-small
(`benchmarks/bench_recommend.py --quick`, loaded 2-core machine, l2 chosen on a
validation split) EASE reaches NDCG@10 0.388 on the stratified 75/25 split and 0.041 on
leave-last-out, against 0.305 and 0.030 for implicit's best-tuned ALS.
Registered by importing
this module (`models.recommenders` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmos.core.progress import Progress
from llmos.models.recommenders import Loop, Recommender, _history_matrix, recommender


@recommender
class EASE(Recommender):
    name = "ease"

    def _fit(self, matrix: Any, histories: list[np.ndarray], loop: Loop | None, progress: Progress) -> None:
        binary = (matrix > 0).astype(np.float64).tocsc()
        counts = np.asarray(binary.sum(axis=0)).ravel()
        self.kept = np.flatnonzero(counts >= int(self.settings.get("min_count", 2))).astype(np.int64)
        x = binary[:, self.kept]
        gram = np.asarray((x.T @ x).todense(), np.float64)
        l2 = self.settings.get("l2")
        gram[np.diag_indices_from(gram)] += float(500.0 if l2 is None else l2)
        inverse = np.linalg.inv(gram)
        weights = inverse / -np.diag(inverse)
        np.fill_diagonal(weights, 0.0)
        self.weights = weights.astype(np.float32)

    def scores(self, users: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
        history = _history_matrix(histories, self.n_items)[:, self.kept]
        # items outside the inverse rank last, popular first among them
        out = np.tile(self.popularity / max(float(self.popularity.max()), 1.0) - 1e3, (len(users), 1))
        out[:, self.kept] = np.asarray(history @ self.weights)
        return out

    def prepare_serving(self) -> None:
        self.position = np.full(self.n_items, -1, np.int64)  # item -> its row of `weights`
        self.position[self.kept] = np.arange(len(self.kept))
        self.floor = (self.popularity / max(float(self.popularity.max()), 1.0) - 1e3).astype(np.float32)

    def score_one(self, user: int, history: np.ndarray) -> np.ndarray:
        rows = self.position[np.unique(np.asarray(history, np.int64))]
        out = self.floor.copy()
        out[self.kept] = self.weights[rows[rows >= 0]].sum(axis=0)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {**super().arrays(), "kept": self.kept, "weights": self.weights}

    def load_arrays(self, arrays: dict[str, np.ndarray], folder: Path) -> None:
        super().load_arrays(arrays, folder)
        self.kept, self.weights = arrays["kept"], arrays["weights"]
