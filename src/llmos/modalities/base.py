"""Driver base classes and their registries.

An input driver turns one dataset column into per-row features (`encode`) and a list of
rows into a padded batch of tensors (`collate`). An output driver owns the label
vocabulary: it encodes targets, computes the loss from logits and decodes logits into
JSON-ready predictions. Drivers are built from their spec entry and serialised into the
model folder (`state()`), so training, evaluation and prediction encode alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import pandas as pd

INPUT_DRIVERS: dict[str, type[InputDriver]] = {}
OUTPUT_DRIVERS: dict[str, type[OutputDriver]] = {}

InT = TypeVar("InT", bound="type[InputDriver]")
OutT = TypeVar("OutT", bound="type[OutputDriver]")


def input_driver(type_name: str) -> Callable[[InT], InT]:
    def register(cls: InT) -> InT:
        INPUT_DRIVERS[type_name] = cls
        return cls

    return register


def output_driver(type_name: str) -> Callable[[OutT], OutT]:
    def register(cls: OutT) -> OutT:
        OUTPUT_DRIVERS[type_name] = cls
        return cls

    return register


class InputDriver(ABC):
    type_name: ClassVar[str]

    def __init__(self, column: str) -> None:
        self.column = column

    @abstractmethod
    def encode(self, values: Sequence[Any]) -> list[Any]:
        """Per-row features (for text: token ids, unpadded)."""

    @abstractmethod
    def length(self, feature: Any) -> int:
        """Size of one row's feature, for length-grouped batching."""

    @abstractmethod
    def collate(self, features: Sequence[Any]) -> dict[str, Any]:
        """Pad a list of row features into a batch of tensors."""

    def check_column(self, frame: pd.DataFrame, source: str) -> None:
        from llmos.core.errors import DataError

        if self.column not in frame.columns:
            raise DataError(
                f"{source}: input column {self.column!r} not found; "
                f"columns are {', '.join(map(str, frame.columns))}"
            )

    # --- for drivers that learn from training data and are saved with the model -------

    @property
    def columns(self) -> list[str]:
        return [self.column]

    def fit(self, values: pd.Series) -> None:  # noqa: B027  (most drivers learn nothing)
        """Learn what encoding needs from the training values (vocabulary, mean)."""

    def encode_frame(self, frame: pd.DataFrame, source: str) -> list[Any]:
        """Per-row features of this driver's column of `frame` (errors name `source`)."""
        self.check_column(frame, source)
        return self.encode(frame[self.column].tolist())

    def state(self) -> dict[str, Any]:
        """What `from_state` needs to rebuild this driver when the model is loaded."""
        return {"type": self.type_name, "column": self.column}

    @classmethod
    def from_state(cls, state: dict[str, Any], tokenizer: Any = None) -> InputDriver:
        options = {k: v for k, v in state.items() if k not in ("type", "column")}
        if tokenizer is not None:
            options["tokenizer"] = tokenizer
        return cls(state["column"], **options)


class OutputDriver(ABC):
    type_name: ClassVar[str]
    # which of train.metrics' evaluations applies: classification, multilabel, entities, regression
    metric_kind: ClassVar[str] = "classification"
    token_level: ClassVar[bool] = False  # one target per row, not per token

    def batch_targets(self, inputs: dict[str, Any], targets: Any, batch: Sequence[int]) -> Any:
        """The targets of one training batch (the loop's only way to read them)."""
        return targets[list(batch)]

    def __init__(self, column: str, labels: list[str]) -> None:
        self.column = column
        self.labels = labels

    @property
    def num_outputs(self) -> int:
        return len(self.labels)

    @classmethod
    @abstractmethod
    def fit(cls, column: str, values: pd.Series, **options: Any) -> OutputDriver:
        """Build the driver (its label vocabulary) from training values."""

    @abstractmethod
    def encode(self, values: pd.Series, source: str) -> Any:
        """Targets as a tensor; raises DataError naming unseen labels."""

    @abstractmethod
    def loss(self, logits: Any, targets: Any) -> Any: ...

    @abstractmethod
    def probabilities(self, logits: Any) -> Any: ...

    @abstractmethod
    def decode(self, probs: Any) -> list[dict[str, Any]]:
        """Predictions as JSON-ready dicts, one per row."""

    @abstractmethod
    def predicted(self, probs: Any) -> Any:
        """Predictions as a numpy array comparable with `encode`'s targets."""

    def target_array(self, targets: Any) -> Any:
        """`encode`'s targets as a numpy array of the same kind as `predicted`'s."""
        return targets.int().numpy() if targets.ndim > 1 else targets.numpy()

    def quick_metrics(self, logits: Any, targets: Any) -> dict[str, float]:
        """Accuracy and macro F1, cheap enough for every validation epoch."""
        from sklearn.metrics import accuracy_score, f1_score

        pred = self.predicted(self.probabilities(logits))
        truth = self.target_array(targets)
        return {
            "accuracy": float(accuracy_score(truth, pred)),
            "macro_f1": float(f1_score(truth, pred, average="macro", zero_division=0)),
        }

    def to_columns(self, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
        """`decode`'s rows as table columns for prediction files (label, score, p_<label>)."""
        columns: dict[str, list[Any]] = {
            "prediction": [r["label"] for r in rows],
            "score": [r["score"] for r in rows],
        }
        for label in self.labels:
            columns[f"p_{label}"] = [r["probabilities"][label] for r in rows]
        return columns

    def state(self) -> dict[str, Any]:
        return {"type": self.type_name, "column": self.column, "labels": self.labels}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> OutputDriver:
        options = {k: v for k, v in state.items() if k not in ("type", "column", "labels")}
        return cls(state["column"], state["labels"], **options)

    def check_column(self, frame: pd.DataFrame, source: str) -> None:
        from llmos.core.errors import DataError

        if self.column not in frame.columns:
            raise DataError(
                f"{source}: label column {self.column!r} not found; "
                f"columns are {', '.join(map(str, frame.columns))}"
            )
