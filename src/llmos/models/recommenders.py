"""The recommender models of task: recommendation, each scoring every item for a user.

- `popularity`: interaction counts (also every model's answer for an unknown user).
- `itemknn`: `implicit`'s item-item nearest neighbours (cosine, or BM25-weighted), K kept per item.
- `als`: `implicit`'s alternating least squares on confidence-weighted implicit feedback
  (bm25/tf-idf weighting optional); a session of recent items is folded in by one
  least-squares solve against the item factors (Hu, Koren and Volinsky 2008, eq. 4).
- `bpr`: BPR matrix factorisation written here in torch and trained by llmos's one loop
  (`train.loop.fit`): `implicit` has BPR too, but its sampler and loop are its own, so it
  could not share llmos's seeding, schedule, checkpoints and progress; the benchmark runs
  `implicit`'s BPR beside it.
- `ease`: EASE's closed-form item-item weights (`models.ease`).
- `content`: item-table features, for items nobody has touched yet (`models.content`).
- `sasrec`: SASRec-style causal self-attention over a user's recent items (`models.sasrec`).

Every model answers `scores(users, histories)`: a (len, n_items) array, `users` holding
training-user indices (-1: unknown) and `histories` each user's items, oldest first.
Saved as `recommender.npz` (+ `sasrec.pt`) in the model folder.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from llmos.core.progress import Progress, SilentProgress

RECOMMENDERS: dict[str, type[Recommender]] = {}
# the training loop a torch model is handed: (module, collate, objective, rows, epochs, lr,
# batch size) -> per-epoch history; `train.workflows.recommendation` gives `train.loop.fit`
Loop = Callable[
    [Any, Callable[[Sequence[Any]], dict[str, Any]], Any, list[Any], int, float, int], list[dict[str, float]]
]


def recommender(cls: type[Recommender]) -> type[Recommender]:
    RECOMMENDERS[cls.name] = cls
    return cls


def user_item_matrix(
    users: np.ndarray, items: np.ndarray, weights: np.ndarray, n_users: int, n_items: int
) -> Any:
    from scipy.sparse import csr_matrix

    return csr_matrix((weights.astype(np.float32), (users, items)), shape=(n_users, n_items))


class Recommender:
    """One model type. `fit` learns from a user-item matrix (and ordered histories)."""

    name: ClassVar[str] = ""
    sequential: ClassVar[bool] = False  # reads the order of a user's items
    reads_items: ClassVar[bool] = False  # reads the item table (`use_items`, before `fit`)
    # training defaults of torch models where the spec's `train` leaves them unset
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, n_users: int, n_items: int, settings: dict[str, Any]) -> None:
        self.n_users, self.n_items, self.settings = n_users, n_items, settings
        self.popularity = np.zeros(n_items, np.float32)
        self.history: list[dict[str, float]] = []

    def use_items(self, table: Any, columns: dict[str, Any], items: Sequence[str]) -> None:
        """The item table (indexed by item id) and its `columns` (the spec's `items`:
        text, category, number, separator), for the vocabulary `items`."""

    def fit(
        self,
        matrix: Any,
        histories: list[np.ndarray],
        loop: Loop | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Learn from the user-item `matrix` and each user's ordered `histories`; torch
        models train through `loop` (the workflow hands in llmos's one training loop)."""
        self.popularity = np.asarray((matrix > 0).sum(axis=0), np.float32).ravel()
        self._fit(matrix, histories, loop, progress or SilentProgress())

    def _fit(self, matrix: Any, histories: list[np.ndarray], loop: Loop | None, progress: Progress) -> None:
        pass

    def scores(self, users: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
        return np.tile(self.popularity, (len(users), 1))

    def prepare_serving(self) -> None:
        """Build what `score_one` reads, once per loaded model (contiguous matrices)."""

    def score_one(self, user: int, history: np.ndarray) -> np.ndarray:
        """One user's (or session's) float32 scores of every item, a fresh array."""
        return np.array(self.scores(np.array([user]), [history])[0], np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity}

    def load_arrays(self, arrays: dict[str, np.ndarray], folder: Path) -> None:
        self.popularity = arrays["popularity"]

    def save(self, folder: Path) -> None:
        np.savez(folder / "recommender.npz", **self.arrays())  # type: ignore[arg-type]

    @classmethod
    def load(cls, folder: Path, n_users: int, n_items: int, settings: dict[str, Any]) -> Recommender:
        model = cls(n_users, n_items, settings)
        with np.load(folder / "recommender.npz") as data:
            model.load_arrays({k: data[k] for k in data.files}, folder)
        return model


def _history_matrix(histories: Sequence[np.ndarray], n_items: int) -> Any:
    from scipy.sparse import csr_matrix

    empty = np.zeros(0, np.int64)
    rows = np.concatenate([np.full(len(h), r) for r, h in enumerate(histories)]) if histories else empty
    cols = np.concatenate([np.asarray(h) for h in histories]) if histories else empty
    data = np.ones(len(cols), np.float32)
    return csr_matrix((data, (rows, cols)), shape=(len(histories), n_items))


@recommender
class Popularity(Recommender):
    name = "popularity"


def _weighted(matrix: Any, weighting: str) -> Any:
    from implicit.nearest_neighbours import bm25_weight, tfidf_weight

    if weighting == "bm25":
        return bm25_weight(matrix, K1=100, B=0.8).tocsr().astype(np.float32)
    if weighting == "tfidf":
        return tfidf_weight(matrix).tocsr().astype(np.float32)
    return matrix.tocsr()


@recommender
class ItemKNN(Recommender):
    name = "itemknn"

    def _fit(self, matrix: Any, histories: list[np.ndarray], loop: Loop | None, progress: Progress) -> None:
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

        k = int(self.settings["neighbours"])
        model = BM25Recommender(K=k) if self.settings["weighting"] == "bm25" else CosineRecommender(K=k)
        with warnings.catch_warnings():  # implicit converts to COO inside, then warns about it
            warnings.simplefilter("ignore")
            model.fit((matrix > 0).astype(np.float32).tocsr(), show_progress=False)
        self.similarity = model.similarity.tocsr().astype(np.float32)

    def scores(self, users: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
        out = np.asarray((_history_matrix(histories, self.n_items) @ self.similarity).todense())
        return out + 1e-6 * self.popularity / max(float(self.popularity.max()), 1.0)  # ties: popular first

    def arrays(self) -> dict[str, np.ndarray]:
        s = self.similarity
        return {**super().arrays(), "data": s.data, "indices": s.indices, "indptr": s.indptr}

    def load_arrays(self, arrays: dict[str, np.ndarray], folder: Path) -> None:
        from scipy.sparse import csr_matrix

        super().load_arrays(arrays, folder)
        shape = (self.n_items, self.n_items)
        self.similarity = csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)


class Factorisation(Recommender):
    """User and item factors; unknown users with a history are folded in."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    weight = 1.0  # the mean weight of a training interaction (after bm25/tf-idf), for fold-in

    def scores(self, users: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
        vectors = np.zeros((len(users), self.item_factors.shape[1]), np.float32)
        known = users >= 0
        vectors[known] = self.user_factors[users[known]]
        for r in np.flatnonzero(~known):
            vectors[r] = self.fold_in(np.asarray(histories[int(r)]))
        return vectors @ self.item_factors.T

    def prepare_serving(self) -> None:
        self.item_matrix = np.ascontiguousarray(self.item_factors.T, np.float32)
        self.user_factors = np.ascontiguousarray(self.user_factors, np.float32)

    def score_one(self, user: int, history: np.ndarray) -> np.ndarray:
        vector = self.user_factors[user] if user >= 0 else self.fold_in(np.asarray(history))
        return vector.astype(np.float32) @ self.item_matrix

    def fold_in(self, items: np.ndarray) -> np.ndarray:
        """A user vector for a session of `items`: ridge regression onto their factors."""
        if len(items) == 0:
            return np.zeros(self.item_factors.shape[1], np.float32)
        y = self.item_factors[items].astype(np.float64)
        reg = float(self.settings.get("regularization", 0.05))
        confidence = float(self.settings.get("alpha", 1.0)) * self.weight  # as implicit's: alpha x weight
        everything = self.item_factors.T.astype(np.float64) @ self.item_factors
        gram = everything + (confidence - 1) * (y.T @ y) + reg * np.eye(y.shape[1])
        return np.linalg.solve(gram, confidence * y.sum(axis=0)).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        factors = {"user_factors": self.user_factors, "item_factors": self.item_factors}
        return {**super().arrays(), **factors, "weight": np.array([self.weight])}

    def load_arrays(self, arrays: dict[str, np.ndarray], folder: Path) -> None:
        super().load_arrays(arrays, folder)
        self.user_factors, self.item_factors = arrays["user_factors"], arrays["item_factors"]
        self.weight = float(arrays["weight"][0])


@recommender
class ALS(Factorisation):
    name = "als"

    def _fit(self, matrix: Any, histories: list[np.ndarray], loop: Loop | None, progress: Progress) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        s = self.settings
        model = AlternatingLeastSquares(
            factors=int(s["factors"]),
            regularization=float(s["regularization"]),
            alpha=float(s["alpha"]),
            iterations=int(s["iterations"]),
            random_state=int(s.get("seed", 42)),
        )
        weighted = _weighted(matrix, s["weighting"])
        self.weight = float(weighted.data.mean()) if weighted.nnz else 1.0
        with threadpool_limits(1, "blas"):  # implicit's own threads; BLAS threads fight them
            model.fit(weighted, show_progress=False)
        self.user_factors = np.asarray(model.user_factors, np.float32)
        self.item_factors = np.asarray(model.item_factors, np.float32)


# --- torch models, trained by the one loop -------------------------------------------------


class PairObjective:
    """BPR's loss: -log sigmoid(score(u, positive) - score(u, negative)) + its L2 term
    (the model returns both, stacked on the last axis)."""

    token_level = False

    def batch_targets(self, inputs: dict[str, Any], targets: Any, batch: Sequence[int]) -> Any:
        return inputs["users"]  # unused by the loss; the loop moves it to the device

    def loss(self, logits: Any, targets: Any) -> Any:
        import torch.nn.functional as F

        return -F.logsigmoid(logits[..., 0]).mean() + logits[..., 1].mean()

    def quick_metrics(self, logits: Any, targets: Any) -> dict[str, float]:
        return {"accuracy": float((logits[..., 0] > 0).float().mean())}


@recommender
class BPR(Factorisation):
    name = "bpr"
    defaults: ClassVar[dict[str, Any]] = {"epochs": 40, "lr": 0.01, "batch_size": 1024}

    def _fit(self, matrix: Any, histories: list[np.ndarray], loop: Loop | None, progress: Progress) -> None:
        import torch
        from torch import nn

        assert loop is not None, "bpr trains through the loop"
        s = self.settings
        n_items, dim, negatives = self.n_items, int(s["factors"]), int(s["negatives"])
        coo = (matrix > 0).tocoo()
        pairs = np.stack([coo.row, coo.col], axis=1).astype(np.int64)
        reg = float(s["regularization"])

        class MF(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.user = nn.Embedding(matrix.shape[0], dim)
                self.item = nn.Embedding(n_items, dim)
                self.bias = nn.Embedding(n_items, 1)
                nn.init.normal_(self.user.weight, std=0.1)
                nn.init.normal_(self.item.weight, std=0.1)
                nn.init.zeros_(self.bias.weight)

            def forward(self, users: Any, positives: Any, negatives: Any) -> Any:
                u = self.user(users).unsqueeze(1)
                pos, neg = self.item(positives).unsqueeze(1), self.item(negatives)
                diff = (
                    (u * pos).sum(-1)
                    + self.bias(positives)
                    - (u * neg).sum(-1)
                    - self.bias(negatives).squeeze(-1)
                )
                penalty = reg * (u.pow(2).sum(-1) + pos.pow(2).sum(-1) + neg.pow(2).sum(-1))
                return torch.stack([diff, penalty.expand_as(diff)], -1)  # the loss reads both

        def collate(rows: Sequence[Any]) -> dict[str, Any]:
            batch = torch.as_tensor(np.stack(rows))
            neg = torch.randint(0, n_items, (len(rows), negatives))
            return {"users": batch[:, 0], "positives": batch[:, 1], "negatives": neg}

        model = MF()
        self.history = loop(
            model,
            collate,
            PairObjective(),
            list(pairs),
            int(s["epochs"]),
            float(s["lr"]),
            int(s["batch_size"]),
        )
        model.cpu()
        with torch.no_grad():
            bias = model.bias.weight.detach().cpu().numpy()
            self.user_factors = np.hstack(
                [model.user.weight.detach().cpu().numpy(), np.ones((matrix.shape[0], 1))]
            )
            self.item_factors = np.hstack([model.item.weight.detach().cpu().numpy(), bias])
        self.user_factors = self.user_factors.astype(np.float32)
        self.item_factors = self.item_factors.astype(np.float32)


# --- a saved recommender: what the kind loads and the server answers with ------------------

MODEL_FILE = "llmos_model.json"


def save_folder(
    folder: Path,
    model: Recommender,
    config: dict[str, Any],
    users: list[str],
    items: list[str],
    histories: list[np.ndarray],
    item_table: Any = None,
) -> None:
    """A recommender's model folder: config, vocabularies, every user's items (what is
    never recommended to them again), the model's arrays and the item table."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder)
    lengths = np.array([len(h) for h in histories], np.int64)
    np.savez(
        folder / "seen.npz",
        indptr=np.concatenate([[0], np.cumsum(lengths)]),
        items=np.concatenate(histories).astype(np.int32) if histories else np.zeros(0, np.int32),
    )
    (folder / "vocabulary.json").write_text(json.dumps({"users": users, "items": items}))
    if item_table is not None:
        item_table.to_json(folder / "items.json", orient="split")
    (folder / MODEL_FILE).write_text(json.dumps({"format": 1, **config}, indent=2))


class RecommenderModel:
    """A loaded recommender: top-k for a known user (their seen items filtered), for an
    anonymous session of recent items, or, for anyone else, the popularity answer.

    Built once per loaded model so that a request costs one scoring pass and an
    argpartition: the model's own per-user scoring (`Recommender.score_one`, e.g. one
    user vector against a contiguous item matrix), each user's seen items as a slice of
    one index array, the popularity answer ranked in advance, every item's feature row as
    a plain dict and each filter's item mask cached. No pandas or database on the request
    path; on MovieLens latest-small (9,700 movies) that is well under a millisecond of
    numpy a request for ALS and EASE on a quiet core."""

    FILTER_CACHE = 256  # filter masks kept (column, values) -> bool array

    def __init__(self, folder: Path, config: dict[str, Any]) -> None:
        import json

        import pandas as pd

        vocabulary = json.loads((folder / "vocabulary.json").read_text())
        self.users: list[str] = vocabulary["users"]
        self.items: list[str] = vocabulary["items"]
        self.user_index = {u: i for i, u in enumerate(self.users)}
        self.item_index = {v: i for i, v in enumerate(self.items)}
        settings = config["recommender"]
        self.model = RECOMMENDERS[settings["model"]].load(folder, len(self.users), len(self.items), settings)
        self.model.prepare_serving()
        with np.load(folder / "seen.npz") as seen:
            self.indptr, self.seen = seen["indptr"], seen["items"].astype(np.int64)
        table = folder / "items.json"
        self.table = pd.read_json(table, orient="split", dtype=False) if table.exists() else None
        self.features: list[dict[str, Any] | None] = [None] * len(self.items)
        if self.table is not None:
            self.table.index = self.table.index.astype(str)
            for item, row in zip(self.table.index, self.table.to_dict("records")):
                if item in self.item_index:
                    self.features[self.item_index[item]] = {
                        str(c): (None if pd_isna(v) else v) for c, v in row.items()
                    }
        self.separator = str(config.get("item_separator") or "|")
        popularity = self.model.popularity.astype(np.float32)
        self.popularity = popularity
        self.popular_order = np.argsort(-popularity, kind="stable")  # the cold-start ranking
        self._masks: OrderedDict[tuple[str, tuple[str, ...]], np.ndarray] = OrderedDict()

    def matching(self, column: str, wanted: Any) -> np.ndarray:
        """Which items have one of the `wanted` values in item column `column` (a cell of
        several values joined by the table's separator matches any of them)."""
        from llmos.core.errors import UsageError

        assert self.table is not None
        if column not in self.table.columns:
            names = ", ".join(map(str, self.table.columns))
            raise UsageError(f"filters: unknown item column {column!r}; columns are {names}")
        allowed = tuple(sorted({str(v) for v in (wanted if isinstance(wanted, list) else [wanted])}))
        key = (column, allowed)
        if key in self._masks:
            self._masks.move_to_end(key)
            return self._masks[key]
        wanted_set = set(allowed)
        cells = self.table[column].reindex(self.items).astype(str)
        mask = np.array([bool(wanted_set.intersection(c.split(self.separator))) for c in cells])
        self._masks[key] = mask
        while len(self._masks) > self.FILTER_CACHE:
            self._masks.popitem(last=False)
        return mask

    def history(self, user: int) -> np.ndarray:
        return self.seen[self.indptr[user] : self.indptr[user + 1]]

    def recommend(
        self,
        user: str | None = None,
        items: Sequence[str] = (),
        k: int = 10,
        exclude: Sequence[str] = (),
        filters: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The top `k` items with their scores; `cold_start` says the answer is the
        popularity ranking (an unknown user with no known recent items)."""
        from llmos.core.errors import UsageError

        index = self.user_index.get(user, -1) if user is not None else -1
        session = np.array([self.item_index[i] for i in items if i in self.item_index], np.int64)
        history = self.history(index) if index >= 0 else session
        if index >= 0 and len(session):
            history = np.concatenate([history, session])
        cold = index < 0 and len(session) == 0
        blocked = [self.item_index[i] for i in exclude if i in self.item_index]
        keep = None
        if filters:
            if self.table is None:
                raise UsageError("filters: this recommender has no item table to filter on")
            keep = np.ones(len(self.items), bool)
            for column, wanted in filters.items():
                keep &= self.matching(column, wanted)
        if cold and keep is None:  # the popularity ranking, ranked in advance
            best = self._first_popular(set(blocked), k)
            scores = self.popularity
        else:
            scores = self.popularity.copy() if cold else self.model.score_one(index, history)
            scores[history] = -np.inf
            scores[blocked] = -np.inf
            if keep is not None:
                scores[~keep] = -np.inf
            available = int(np.isfinite(scores).sum()) if keep is not None else len(scores)
            if keep is None:
                available -= len(np.union1d(history, np.asarray(blocked, np.int64)))
            take = min(k, available)
            if take <= 0:
                return {"cold_start": cold, "items": []}
            best = np.argpartition(-scores, take - 1)[:take]
            best = best[np.argsort(-scores[best], kind="stable")]
        rows = []
        for i in best:
            row: dict[str, Any] = {"item": self.items[i], "score": round(float(scores[i]), 6)}
            if self.features[i] is not None:
                row["features"] = self.features[i]
            rows.append(row)
        return {"cold_start": cold, "items": rows}

    def _first_popular(self, blocked: set[int], k: int) -> np.ndarray:
        chosen = []
        for i in self.popular_order:
            if int(i) not in blocked:
                chosen.append(int(i))
                if len(chosen) == k:
                    break
        return np.array(chosen, np.int64)


def pd_isna(value: Any) -> bool:
    try:
        return bool(value != value)  # NaN
    except Exception:
        return False


# the models of their own modules register on import
from llmos.models import content, ease, sasrec  # noqa: E402, F401
