"""Several input drivers seen as one, so the loop and the predictor stay single-input.

A row's feature is the tuple of each driver's feature; a batch is every driver's
tensors under `"<column>/<key>"`, which the fusion model splits by column again. The
length used for length-grouped batching is the sum of the drivers' lengths (images
and numbers count 1, texts their tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from llmos.modalities.base import INPUT_DRIVERS, InputDriver

SEPARATOR = "/"


class InputSet:
    def __init__(self, drivers: Sequence[InputDriver]) -> None:
        self.drivers = list(drivers)

    @property
    def columns(self) -> list[str]:
        return [d.column for d in self.drivers]

    def check_column(self, frame: pd.DataFrame, source: str) -> None:
        for driver in self.drivers:
            driver.check_column(frame, source)

    def fit(self, frame: pd.DataFrame) -> None:
        for driver in self.drivers:
            driver.fit(frame[driver.column])

    def encode_frame(self, frame: pd.DataFrame, source: str) -> list[tuple[Any, ...]]:
        per_driver = [d.encode_frame(frame, source) for d in self.drivers]
        return list(zip(*per_driver))

    def length(self, feature: tuple[Any, ...]) -> int:
        return sum(d.length(f) for d, f in zip(self.drivers, feature))

    def collate(self, features: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
        batch: dict[str, Any] = {}
        for i, driver in enumerate(self.drivers):
            for key, tensor in driver.collate([f[i] for f in features]).items():
                batch[f"{driver.column}{SEPARATOR}{key}"] = tensor
        return batch

    def state(self) -> list[dict[str, Any]]:
        return [d.state() for d in self.drivers]

    @classmethod
    def from_state(cls, states: list[dict[str, Any]], tokenizers: dict[str, Any]) -> InputSet:
        return cls([INPUT_DRIVERS[s["type"]].from_state(s, tokenizers.get(s["column"])) for s in states])


def split_batch(batch: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`{"col/key": t}` back into `{"col": {"key": t}}`."""
    out: dict[str, dict[str, Any]] = {}
    for name, tensor in batch.items():
        column, _, key = name.rpartition(SEPARATOR)
        out.setdefault(column, {})[key] = tensor
    return out
