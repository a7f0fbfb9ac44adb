"""Tabular features: `number` and `category` inputs, and the `number` output (regression).

Numbers are z-scored with the training mean and deviation (saved with the model), and
carry a second value saying whether the cell was empty, so a missing amount is not
mistaken for an average one. Categories become indices into an embedding table whose
row 0 is the unknown bucket: values never seen in training (or seen fewer than
`min_count` times) land there instead of failing, and its vector stays zero, so an
unseen value pushes the prediction nowhere. Regression targets are learned on the
z-scored scale and reported on the original one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from llmos.core.errors import DataError
from llmos.modalities.base import InputDriver, OutputDriver, input_driver, output_driver


def _numbers(values: Sequence[Any], column: str, source: str = "") -> list[float]:
    """Floats (NaN for empty cells); a cell that is not a number fails with its row."""
    out = []
    for i, v in enumerate(values):
        if v is None or (isinstance(v, str) and not v.strip()):
            out.append(math.nan)
            continue
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            where = f"{source}: " if source else ""
            raise DataError(f"{where}column {column!r}, row {i + 1}: {v!r} is not a number") from None
    return out


def _mean_std(values: list[float], column: str) -> tuple[float, float]:
    real = [v for v in values if not math.isnan(v)]
    if not real:
        raise DataError(f"column {column!r} has no numbers")
    mean = sum(real) / len(real)
    std = math.sqrt(sum((v - mean) ** 2 for v in real) / len(real))
    return mean, std if std > 1e-12 else 1.0


@input_driver("number")
class NumberDriver(InputDriver):
    type_name = "number"

    def __init__(self, column: str, normalize: bool = True, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__(column)
        self.normalize = normalize
        self.mean, self.std = mean, std

    def fit(self, values: pd.Series) -> None:
        if self.normalize:
            self.mean, self.std = _mean_std(_numbers(values.tolist(), self.column), self.column)

    def encode(self, values: Sequence[Any]) -> list[tuple[float, float]]:
        return [
            (0.0, 1.0) if math.isnan(v) else ((v - self.mean) / self.std, 0.0)
            for v in _numbers(values, self.column)
        ]

    def length(self, feature: Any) -> int:
        return 1

    def collate(self, features: Sequence[tuple[float, float]]) -> dict[str, Any]:
        import torch

        return {"values": torch.tensor(list(features), dtype=torch.float32)}

    def state(self) -> dict[str, Any]:
        return {**super().state(), "normalize": self.normalize, "mean": self.mean, "std": self.std}


def _category_key(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


@input_driver("category")
class CategoryInputDriver(InputDriver):
    type_name = "category"

    def __init__(
        self, column: str, vocabulary: Sequence[str] = (), embedding_dim: int = 16, min_count: int = 1
    ) -> None:
        super().__init__(column)
        self.vocabulary = list(vocabulary)
        self.embedding_dim = embedding_dim
        self.min_count = min_count
        self.index = {v: i + 1 for i, v in enumerate(self.vocabulary)}  # 0: unknown

    def fit(self, values: pd.Series) -> None:
        keys = pd.Series([_category_key(v) for v in values]).dropna()
        counts = keys.value_counts()
        self.vocabulary = sorted(str(k) for k, n in counts.items() if n >= self.min_count)
        self.index = {v: i + 1 for i, v in enumerate(self.vocabulary)}

    @property
    def size(self) -> int:
        """Rows of the embedding table: the vocabulary plus the unknown bucket."""
        return len(self.vocabulary) + 1

    def encode(self, values: Sequence[Any]) -> list[int]:
        return [self.index.get(_category_key(v) or "", 0) for v in values]

    def length(self, feature: Any) -> int:
        return 1

    def collate(self, features: Sequence[int]) -> dict[str, Any]:
        import torch

        return {"ids": torch.tensor(list(features), dtype=torch.long)}

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "vocabulary": self.vocabulary,
            "embedding_dim": self.embedding_dim,
            "min_count": self.min_count,
        }


@output_driver("number")
class NumberOutputDriver(OutputDriver):
    type_name = "number"
    metric_kind = "regression"

    def __init__(self, column: str, labels: list[str], mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__(column, labels)
        self.mean, self.std = mean, std

    @property
    def num_outputs(self) -> int:
        return 1

    @classmethod
    def fit(cls, column: str, values: pd.Series, **options: Any) -> NumberOutputDriver:
        mean, std = _mean_std(_numbers(values.tolist(), column), column)
        return cls(column, [], mean=mean, std=std)

    def encode(self, values: pd.Series, source: str) -> Any:
        import torch

        numbers = _numbers(values.tolist(), self.column, source)
        empty = [i + 1 for i, v in enumerate(numbers) if math.isnan(v)]
        if empty:
            raise DataError(f"{source}: target column {self.column!r} is empty in row {empty[0]}")
        return (torch.tensor(numbers, dtype=torch.float32) - self.mean) / self.std

    def loss(self, logits: Any, targets: Any) -> Any:
        import torch.nn.functional as F

        return F.mse_loss(logits.float().squeeze(-1), targets.float())

    def probabilities(self, logits: Any) -> Any:
        """The predicted numbers on the original scale (regression has no probabilities)."""
        return logits.float().squeeze(-1) * self.std + self.mean

    def predicted(self, probs: Any) -> Any:
        return probs.numpy()

    def target_array(self, targets: Any) -> Any:
        return (targets.float() * self.std + self.mean).numpy()

    def decode(self, probs: Any) -> list[dict[str, Any]]:
        return [{"value": round(float(v), 6)} for v in probs.tolist()]

    def quick_metrics(self, logits: Any, targets: Any) -> dict[str, float]:
        from sklearn.metrics import mean_absolute_error, r2_score

        truth, pred = self.target_array(targets), self.predicted(self.probabilities(logits))
        return {"mae": float(mean_absolute_error(truth, pred)), "r2": float(r2_score(truth, pred))}

    def to_columns(self, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
        return {"prediction": [r["value"] for r in rows]}

    def state(self) -> dict[str, Any]:
        return {**super().state(), "mean": self.mean, "std": self.std}
