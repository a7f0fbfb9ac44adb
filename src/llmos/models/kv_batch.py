"""`RunningBatch`: the rows a causal LM is decoding together, in one left-padded KV cache
that rows join and leave between decoding steps.

Continuous batching needs two things a transformers cache does not do by itself: take
in the cache of requests prefilled while others were decoding, and drop the rows of
finished requests. Both are done here on the `DynamicCache` the model fills: a newcomer's
cache is padded on the left to the running width (or the running rows are, when the
newcomer's prompt is longer) and stacked under the running rows; a finished row is
selected out, and the columns that only padding still uses are cropped. The attention
mask marks the padding, each row keeps its own position ids, so a row decodes the same
tokens whether it runs alone or joined a batch.

Why one padded cache and not one `DynamicCache` per request: decoding on a CPU is bound
by reading the weights, and one forward pass over the whole batch reads them once, where
per-request caches mean a forward pass per request. Measured by
benchmarks/bench_generate.py ("step cost"): one step of 8 SmolLM2-135M rows took 936 ms
with the padded cache and 3,241 ms with per-request caches (3.5x; shared 2-core CPU,
loaded). Joining copies the running cache once per admission; `DynamicCache` copies it at
every step anyway (it grows by concatenation), so a join costs about one step's copy.

A model whose cache has layers other than plain full-attention ones (sliding windows,
linear attention) cannot be joined this way: `joinable` is False and the engine admits
new requests when the running ones are done (the batching before continuous batching).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def _pad_left(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - t.shape[dim]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)


def prefill(model: Any, ids: torch.Tensor, mask: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """Run left-padded prompts through `model` into a fresh KV cache; return the output
    (logits of the last position, `.cache`) and each row's position ids."""
    from transformers import DynamicCache

    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        cache=DynamicCache(config=model.config),
        use_cache=True,
        logits_to_keep=1,
    )
    return out, positions


class RunningBatch:
    """Rows decoding together. `add` prefills new prompts and appends their rows at the
    end; `step` feeds one token per row; `keep` drops the rows not named (in order)."""

    def __init__(self, model: Any, pad_id: int) -> None:
        self.model = model
        self.pad_id = pad_id
        self.device = next(model.parameters()).device
        self.cache: Any = None
        self.mask: torch.Tensor | None = None  # (rows, cache width): 1 real token, 0 padding
        self.last: torch.Tensor | None = None  # (rows, 1): position of each row's last token

    def __len__(self) -> int:
        return 0 if self.mask is None else int(self.mask.shape[0])

    @property
    def joinable(self) -> bool:
        """Whether rows may join while others run (every cache layer is a plain full-attention
        layer this class knows how to pad)."""
        from transformers.cache_utils import DynamicLayer

        if self.cache is None:
            return True
        return all(type(layer) is DynamicLayer and layer.is_initialized for layer in self.cache.layers)

    def add(self, prompts: Sequence[Sequence[int]]) -> torch.Tensor:
        """Prefill `prompts` (one forward pass for all of them) and append their rows;
        return each one's next-token logits."""
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):  # left padding: every row's next token is at the end
            ids[i, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
            mask[i, width - len(prompt) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        out, positions = prefill(self.model, ids, mask)
        self._join(out.cache, mask, positions[:, -1:])
        return out.logits[:, -1]

    def _join(self, cache: Any, mask: torch.Tensor, last: torch.Tensor) -> None:
        if self.cache is None or self.mask is None or self.last is None or len(self) == 0:
            self.cache, self.mask, self.last = cache, mask, last
            return
        if not self.joinable:
            raise RuntimeError("this model's cache cannot take rows while others run")
        width = max(self.mask.shape[1], mask.shape[1])
        for mine, theirs in zip(self.cache.layers, cache.layers):
            mine.keys = torch.cat([_pad_left(mine.keys, width, 2), _pad_left(theirs.keys, width, 2)])
            mine.values = torch.cat([_pad_left(mine.values, width, 2), _pad_left(theirs.values, width, 2)])
        self.mask = torch.cat([_pad_left(self.mask, width, 1), _pad_left(mask, width, 1)])
        self.last = torch.cat([self.last, last])

    def step(self, tokens: Sequence[int]) -> torch.Tensor:
        """Feed one token per row (in row order); return the next-token logits."""
        assert self.mask is not None and self.last is not None
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self), 1))], dim=1)
        self.last = self.last + 1
        out = self.model(
            input_ids=torch.tensor(list(tokens), device=self.device).unsqueeze(1),
            attention_mask=self.mask,
            position_ids=self.last,
            cache=self.cache,
            use_cache=True,
        )
        self.cache = out.cache
        return out.logits[:, -1]

    def keep(self, rows: Sequence[int]) -> None:
        """Keep only `rows` (indices, in order); crop the columns now padding in every row."""
        if self.mask is None or self.last is None or len(rows) == len(self):
            return
        if not rows:
            self.cache = self.mask = self.last = None
            return
        index = torch.tensor(list(rows), device=self.device)
        self.cache.batch_select_indices(index)
        self.mask, self.last = self.mask[index], self.last[index]
        start = int(self.mask.any(0).to(torch.int8).argmax())
        if start > 0 and self.joinable:
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, start:], layer.values[:, :, start:]
            self.mask = self.mask[:, start:]
