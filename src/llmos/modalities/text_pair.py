"""Text-pair input: two columns encoded jointly by the tokenizer (`tokenizer(a, b)`), so
one encoder reads a query with a passage, a premise with a hypothesis. Cross-encoders
(rerankers), paraphrase and entailment classifiers read this input.

A row's feature is its token ids (the tokenizer's own pair template and truncation,
`longest_first`); batches pad like text. Segment ids are not passed: the models llmos
builds on (MiniLM and most sentence encoders) were trained with one segment, and the
separator token already marks the boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from llmos.modalities.base import input_driver
from llmos.modalities.text import TextDriver


def _text(value: Any) -> str:
    return "" if value is None or value != value else str(value)  # value != value: NaN


@input_driver("text-pair")
class TextPairDriver(TextDriver):
    type_name = "text-pair"

    def __init__(self, column: str, tokenizer: Any, max_length: int = 256, pair: str = "") -> None:
        super().__init__(column, tokenizer, max_length)
        if not pair:
            raise ValueError("a text-pair input needs its second column (`pair`)")
        self.pair = pair

    @property
    def columns(self) -> list[str]:
        return [self.column, self.pair]

    def check_column(self, frame: pd.DataFrame, source: str) -> None:
        from llmos.core.errors import DataError

        for column in self.columns:
            if column not in frame.columns:
                raise DataError(
                    f"{source}: input column {column!r} not found; "
                    f"columns are {', '.join(map(str, frame.columns))}"
                )

    def encode_frame(self, frame: pd.DataFrame, source: str) -> list[Any]:
        self.check_column(frame, source)
        return self.encode(list(zip(frame[self.column].tolist(), frame[self.pair].tolist())))

    def encode(self, values: Sequence[Any]) -> list[list[int]]:
        """`values`: (first, second) pairs."""
        firsts = [_text(a) for a, _ in values]
        seconds = [_text(b) for _, b in values]
        out = self.tokenizer(
            firsts, seconds, truncation="longest_first", max_length=self.max_length, padding=False
        )
        return [list(ids) for ids in out["input_ids"]]

    def state(self) -> dict[str, Any]:
        return {**super().state(), "pair": self.pair}
