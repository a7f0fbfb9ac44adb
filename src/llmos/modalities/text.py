"""Text input: tokenised once up front, padded per batch (dynamic padding)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmos.modalities.base import InputDriver, input_driver


@input_driver("text")
class TextDriver(InputDriver):
    type_name = "text"

    def __init__(self, column: str, tokenizer: Any, max_length: int = 128) -> None:
        super().__init__(column)
        self.tokenizer = tokenizer
        self.max_length = max_length
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        self.pad_id = int(pad)

    def encode(self, values: Sequence[Any]) -> list[list[int]]:
        texts = ["" if v is None or v != v else str(v) for v in values]  # v != v: NaN
        out = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=False)
        return [list(ids) for ids in out["input_ids"]]

    def state(self) -> dict[str, Any]:
        return {**super().state(), "max_length": self.max_length}

    def length(self, feature: list[int]) -> int:
        return len(feature)

    def collate(self, features: Sequence[list[int]]) -> dict[str, Any]:
        import torch

        width = max(len(f) for f in features)
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for i, f in enumerate(features):
            ids[i, : len(f)] = torch.tensor(f, dtype=torch.long)
            mask[i, : len(f)] = 1
        return {"input_ids": ids, "attention_mask": mask}
