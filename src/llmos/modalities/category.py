"""Label outputs: `category` (one label per row) and `set` (several labels per row)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from llmos.core.errors import DataError
from llmos.modalities.base import OutputDriver, output_driver


def _label_order(values: list[str]) -> list[str]:
    """Sort labels numerically when they are all integers ('2' before '10'), else as text."""
    if all(v.lstrip("-").isdigit() for v in values):
        return sorted(values, key=int)
    return sorted(values)


@output_driver("category")
class CategoryDriver(OutputDriver):
    type_name = "category"

    @classmethod
    def fit(cls, column: str, values: pd.Series, **options: Any) -> CategoryDriver:
        seen = values.astype(str).unique().tolist()
        declared = options.get("labels")
        if declared:  # the spec declares the full label set; training rows may cover part of it
            unknown = sorted(set(seen) - set(declared))
            if unknown:
                raise DataError(
                    f"label column {column!r} has labels missing from the spec's `labels`: "
                    + ", ".join(repr(u) for u in unknown[:5])
                    + "; add them to the output's labels"
                )
            return cls(column, list(dict.fromkeys(declared)))
        labels = _label_order(seen)
        if len(labels) < 2:
            raise DataError(
                f"label column {column!r} has a single value ({labels[0]!r}); "
                "a classifier needs at least two labels"
            )
        return cls(column, labels)

    def __init__(self, column: str, labels: list[str]) -> None:
        super().__init__(column, labels)
        self.index = {label: i for i, label in enumerate(labels)}

    def encode(self, values: pd.Series, source: str) -> Any:
        import torch

        strings = values.astype(str)
        unknown = sorted(set(strings) - set(self.index))
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:5])
            raise DataError(
                f"{source}: column {self.column!r} has labels the model was not trained on: "
                f"{shown}{' ...' if len(unknown) > 5 else ''}"
            )
        return torch.tensor([self.index[s] for s in strings], dtype=torch.long)

    def loss(self, logits: Any, targets: Any) -> Any:
        import torch.nn.functional as F

        return F.cross_entropy(logits.float(), targets)

    def probabilities(self, logits: Any) -> Any:
        return logits.float().softmax(-1)

    def predicted(self, probs: Any) -> Any:
        return probs.argmax(-1).numpy()

    def decode(self, probs: Any) -> list[dict[str, Any]]:
        rows = []
        for p in probs.tolist():
            best = max(range(len(p)), key=p.__getitem__)
            rows.append(
                {
                    "label": self.labels[best],
                    "score": round(p[best], 6),
                    "probabilities": {lab: round(v, 6) for lab, v in zip(self.labels, p)},
                }
            )
        return rows


@output_driver("set")
class SetDriver(OutputDriver):
    type_name = "set"
    metric_kind = "multilabel"

    def __init__(self, column: str, labels: list[str], separator: str = "|", threshold: float = 0.5) -> None:
        super().__init__(column, labels)
        self.separator = separator
        self.threshold = threshold
        self.index = {label: i for i, label in enumerate(labels)}

    def _split(self, values: pd.Series) -> list[list[str]]:
        return [
            [t.strip() for t in str(v).split(self.separator) if t.strip()] if not pd.isna(v) else []
            for v in values
        ]

    @classmethod
    def fit(cls, column: str, values: pd.Series, **options: Any) -> SetDriver:
        probe = cls(column, [], **options)
        labels = _label_order(sorted({t for row in probe._split(values) for t in row}))
        if not labels:
            raise DataError(f"label column {column!r} holds no labels")
        return cls(column, labels, **options)

    def encode(self, values: pd.Series, source: str) -> Any:
        import torch

        rows = self._split(values)
        unknown = sorted({t for row in rows for t in row} - set(self.index))
        if unknown:
            raise DataError(
                f"{source}: column {self.column!r} has labels the model was not trained on: "
                + ", ".join(repr(u) for u in unknown[:5])
            )
        target = torch.zeros((len(rows), len(self.labels)))
        for i, row in enumerate(rows):
            for t in row:
                target[i, self.index[t]] = 1.0
        return target

    def loss(self, logits: Any, targets: Any) -> Any:
        import torch.nn.functional as F

        return F.binary_cross_entropy_with_logits(logits.float(), targets)

    def probabilities(self, logits: Any) -> Any:
        return logits.float().sigmoid()

    def predicted(self, probs: Any) -> Any:
        return (probs >= self.threshold).int().numpy()

    def decode(self, probs: Any) -> list[dict[str, Any]]:
        rows = []
        for p in probs.tolist():
            chosen = [lab for lab, v in zip(self.labels, p) if v >= self.threshold]
            rows.append(
                {
                    "labels": chosen,
                    "probabilities": {lab: round(v, 6) for lab, v in zip(self.labels, p)},
                }
            )
        return rows

    def to_columns(self, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
        columns: dict[str, list[Any]] = {"prediction": ["|".join(r["labels"]) for r in rows]}
        for label in self.labels:
            columns[f"p_{label}"] = [r["probabilities"][label] for r in rows]
        return columns

    def state(self) -> dict[str, Any]:
        return {**super().state(), "separator": self.separator, "threshold": self.threshold}
