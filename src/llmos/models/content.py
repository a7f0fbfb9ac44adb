"""`content`: a hybrid recommender that can rank an item nobody has interacted with yet
(cold start): ALS on the interactions, plus a ridge map from item features to ALS item
factors learnt on the items with interactions and applied to those without (the
attribute-to-factor mapping of Gantner et al. 2010).

Every item becomes one feature vector built from its row of the item table: each text
column embedded by a sentence encoder (MiniLM by default, `encoder`; `tfidf` for a
bag of words), each category column as the multi-hot of its values (split by the table's
separator), each number column as the one-hot of its decile, every block L2-normalised
so that none outweighs the others. Items with interactions keep their ALS factors; an
item without any gets the factors its features map to, so it scores for every user (and
session) the moment its row is in the table. The collaborative models (popularity,
ItemKNN, ALS, BPR, EASE, SASRec) give such an item no signal at all.

Why the map and not a profile of features: on MovieLens latest-small with 10% of the
movies withheld (`benchmarks/bench_recommend.py`, development run), ranking the withheld
movies by the cosine of their features with the user's mean feature vector gave
Recall@10 0.055 (random: 0.010), the map onto ALS factors 0.186: the factors carry how
much a movie is watched, which its genres and tags predict and a cosine cannot express.
Hand-written because it is one least-squares solve over scikit-learn's vectorisers and
the zoo's sentence encoder, where a library (LightFM, RecBole) would bring its own data
model. Registered by importing this module (`models.recommenders` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from llmos.core.errors import DataError
from llmos.core.progress import Progress
from llmos.models.recommenders import ALS, Loop, recommender

BINS = 10  # deciles of a number column
MAP_L2 = 10.0  # ridge of the feature-to-factor map where the spec's `l2` is unset
_EMBEDDED: dict[tuple[str, int], np.ndarray] = {}  # text blocks of this process (retraining)


def _normalised(block: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    return (block / np.maximum(norms, 1e-12)).astype(np.float32)


def _text_block(texts: list[str], encoder: str) -> np.ndarray:
    if encoder == "tfidf":
        from sklearn.feature_extraction.text import TfidfVectorizer

        matrix = TfidfVectorizer(min_df=2).fit_transform(texts)
        return np.asarray(matrix.todense(), np.float32)
    from llmos.models.llm_classifier import SentenceEmbedder
    from llmos.models.zoo import resolve_model

    key = (encoder, hash(tuple(texts)))
    if key not in _EMBEDDED:
        embed = SentenceEmbedder(resolve_model(encoder, None), max_length=64, batch_size=128)
        vectors = embed(texts).float().numpy()
        vectors[[not t.strip() for t in texts]] = 0.0  # no text: no signal (not the empty string's)
        _EMBEDDED.clear()  # one table at a time
        _EMBEDDED[key] = np.asarray(vectors, np.float32)
    return _EMBEDDED[key]


def _category_block(cells: list[str], separator: str) -> np.ndarray:
    values = sorted({v for c in cells for v in c.split(separator) if v})
    index = {v: i for i, v in enumerate(values)}
    block = np.zeros((len(cells), len(values)), np.float32)
    for r, cell in enumerate(cells):
        for v in cell.split(separator):
            if v:
                block[r, index[v]] = 1.0
    return block


def _number_block(values: np.ndarray) -> np.ndarray:
    known = ~np.isnan(values)
    block = np.zeros((len(values), BINS), np.float32)
    if known.any():
        edges = np.quantile(values[known], np.linspace(0, 1, BINS + 1)[1:-1])
        block[np.flatnonzero(known), np.searchsorted(edges, values[known])] = 1.0
    return block


def item_features(
    table: Any, items: Sequence[str], text: Sequence[str], category: Sequence[str], number: Sequence[str],
    separator: str, encoder: str,
) -> np.ndarray:  # fmt: skip
    """One L2-normalised row per item of `items` (zeros where the table has no row)."""
    import pandas as pd

    rows = table.reindex(list(items))
    blocks = []
    for column in text:
        blocks.append(_text_block(rows[column].fillna("").astype(str).tolist(), encoder))
    for column in category:
        blocks.append(_category_block(rows[column].fillna("").astype(str).tolist(), separator))
    for column in number:
        blocks.append(_number_block(pd.to_numeric(rows[column], errors="coerce").to_numpy(np.float64)))
    if not blocks:
        raise DataError("recommendation.items: the content model needs text, category or number columns")
    return _normalised(np.hstack([_normalised(b) for b in blocks]))


@recommender
class Content(ALS):
    name = "content"
    reads_items: ClassVar[bool] = True

    def use_items(self, table: Any, columns: dict[str, Any], items: Sequence[str]) -> None:
        self.features = item_features(
            table, items, columns["text"], columns["category"], columns["number"],
            columns["separator"], str(self.settings.get("encoder", "minilm")),
        )  # fmt: skip

    def _fit(self, matrix: Any, histories: list[np.ndarray], loop: Loop | None, progress: Progress) -> None:
        assert hasattr(self, "features"), "the workflow hands the item table in first (use_items)"
        super()._fit(matrix, histories, loop, progress)
        warm = self.popularity > 0
        x = np.hstack([self.features, np.ones((self.n_items, 1), np.float32)]).astype(np.float64)
        l2 = self.settings.get("l2")
        gram = x[warm].T @ x[warm] + float(MAP_L2 if l2 is None else l2) * np.eye(x.shape[1])
        mapping = np.linalg.solve(gram, x[warm].T @ self.item_factors[warm].astype(np.float64))
        self.item_factors = self.item_factors.copy()
        self.item_factors[~warm] = (x[~warm] @ mapping).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {**super().arrays(), "features": self.features}

    def load_arrays(self, arrays: dict[str, np.ndarray], folder: Path) -> None:
        super().load_arrays(arrays, folder)
        self.features = arrays["features"]
