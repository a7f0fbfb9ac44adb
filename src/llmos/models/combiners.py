"""Fusion combiners: how the encoded inputs become one vector for the head.

- `concat`: late fusion. The inputs' pooled vectors side by side, then a ReLU layer.
- `gated`: a gated multimodal unit (Arevalo et al. 2017) generalised to n inputs: each
  input is projected and squashed, and a softmax over inputs, computed per example and
  per feature from all inputs together, weighs them. The model learns to lean on the
  input that is informative for the example at hand.
- `transformer`: cross-modal attention. Every input's token sequence is projected to
  one width, tagged with a learned input embedding, and all of them, behind a learned
  summary token, go through a transformer encoder; the summary token is the output.

A new combiner is one class plus its `COMBINERS` entry.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from llmos.core.errors import ModelError
from llmos.models.encoders import Encoded


class ConcatCombiner(nn.Module):
    def __init__(self, widths: list[int], hidden: int, dropout: float, **_: Any) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(sum(widths), hidden), nn.ReLU(), nn.Dropout(dropout))

    def forward(self, encoded: list[Encoded]) -> torch.Tensor:
        return self.mlp(torch.cat([e.pooled for e in encoded], dim=-1))


class GatedCombiner(nn.Module):
    def __init__(self, widths: list[int], hidden: int, dropout: float, **_: Any) -> None:
        super().__init__()
        self.project = nn.ModuleList(nn.Linear(w, hidden) for w in widths)
        self.gate = nn.Linear(sum(widths), len(widths) * hidden)
        self.dropout = nn.Dropout(dropout)
        self.hidden = hidden

    def forward(self, encoded: list[Encoded]) -> torch.Tensor:
        pooled = [e.pooled for e in encoded]
        views = torch.stack([torch.tanh(p(x)) for p, x in zip(self.project, pooled)], dim=1)
        weights = self.gate(torch.cat(pooled, dim=-1)).view(-1, len(pooled), self.hidden).softmax(dim=1)
        return self.dropout((weights * views).sum(dim=1))


class TransformerCombiner(nn.Module):
    def __init__(
        self, widths: list[int], hidden: int, dropout: float, layers: int = 1, heads: int = 4, **_: Any
    ) -> None:
        super().__init__()
        if hidden % heads:
            raise ModelError(f"combiner.hidden ({hidden}) must be a multiple of combiner.heads ({heads})")
        self.project = nn.ModuleList(nn.Linear(w, hidden) for w in widths)
        self.input_embedding = nn.Parameter(torch.randn(len(widths), hidden) * 0.02)
        self.summary = nn.Parameter(torch.randn(1, 1, hidden) * 0.02)
        layer = nn.TransformerEncoderLayer(
            hidden, heads, dim_feedforward=2 * hidden, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, encoded: list[Encoded]) -> torch.Tensor:
        batch = encoded[0].tokens.shape[0]
        sequences = [self.summary.expand(batch, -1, -1)]
        masks = [torch.ones(batch, 1, dtype=torch.bool, device=self.summary.device)]
        for i, (project, e) in enumerate(zip(self.project, encoded)):
            sequences.append(project(e.tokens) + self.input_embedding[i])
            masks.append(e.mask)
        tokens = torch.cat(sequences, dim=1)
        padding = ~torch.cat(masks, dim=1)
        return self.norm(self.encoder(tokens, src_key_padding_mask=padding)[:, 0])


COMBINERS: dict[str, type[nn.Module]] = {
    "concat": ConcatCombiner,
    "gated": GatedCombiner,
    "transformer": TransformerCombiner,
}
