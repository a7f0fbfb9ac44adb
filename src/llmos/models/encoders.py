"""Per-input encoders of the fusion model: one per input type, one output shape.

Every encoder returns an `Encoded`: a token sequence (B, T, D) with its mask, and one
pooled vector (B, D). Late-fusion combiners read the pooled vectors; the transformer
combiner attends over the token sequences (text tokens, CNN feature-map cells, ViT
patches, one token per number or category). `pretrained` says whether the weights came
from a model (trained at the method's learning rate) or start random (trained at the
head's rate, like the head).

The small CNN and the augmentations are hand-written because torchvision (which has
both) is not part of the stack; they are a few lines of torch each.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from llmos.models.classifier import pool


class Encoded(NamedTuple):
    tokens: torch.Tensor  # (B, T, D)
    mask: torch.Tensor  # (B, T) bool, True for real tokens
    pooled: torch.Tensor  # (B, D)


def _single(vector: torch.Tensor) -> Encoded:
    """A one-token sequence from a (B, D) vector (numbers, categories)."""
    mask = torch.ones(vector.shape[0], 1, dtype=torch.bool, device=vector.device)
    return Encoded(vector.unsqueeze(1), mask, vector)


class TextEncoder(nn.Module):
    """A Hugging Face encoder (maybe peft-wrapped) with the model's pooling."""

    pretrained = True

    def __init__(self, model: nn.Module, width: int, pooling: str) -> None:
        super().__init__()
        self.model = model
        self.width = width
        self.pooling = pooling

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Encoded:
        out: Any = self.model(input_ids=input_ids, attention_mask=attention_mask)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        extra = hidden.shape[1] - attention_mask.shape[1]
        if extra > 0:  # prompt tuning's virtual tokens come first
            hidden = hidden[:, extra:]
        return Encoded(hidden, attention_mask.bool(), pool(hidden, attention_mask, self.pooling))


class Augment(nn.Module):
    """Random flips, pad-and-crop shifts and brightness changes, in training mode only."""

    def __init__(self, flip: bool = True, crop_padding: int = 4, brightness: float = 0.0) -> None:
        super().__init__()
        self.flip, self.crop_padding, self.brightness = flip, crop_padding, brightness

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        batch = x.shape[0]
        if self.flip:
            chosen = torch.rand(batch, device=x.device) < 0.5
            x = torch.where(chosen.view(-1, 1, 1, 1), x.flip(-1), x)
        if self.crop_padding:
            p = self.crop_padding
            h, w = x.shape[-2:]
            padded = nn.functional.pad(x, (p, p, p, p), mode="reflect" if p < min(h, w) else "constant")
            dy = torch.randint(0, 2 * p + 1, (batch,)).tolist()
            dx = torch.randint(0, 2 * p + 1, (batch,)).tolist()
            x = torch.stack([padded[i, :, a : a + h, b : b + w] for i, (a, b) in enumerate(zip(dy, dx))])
        if self.brightness:
            scale = 1 + (torch.rand(batch, 1, 1, 1, device=x.device) * 2 - 1) * self.brightness
            x = x * scale
        return x


class ConvNet(nn.Module):
    """A small VGG-style CNN trained from scratch: per block two 3x3 convs with batch
    norm, then 2x2 max pooling. Its last feature map's cells are the image's tokens."""

    pretrained = False

    def __init__(self, channels: list[int], augment: dict[str, Any] | None) -> None:
        super().__init__()
        self.augment = Augment(**augment) if augment else nn.Identity()
        layers: list[nn.Module] = []
        previous = 3
        for c in channels:
            for first in (True, False):
                layers += [
                    nn.Conv2d(previous if first else c, c, 3, padding=1, bias=False),
                    nn.BatchNorm2d(c),
                    nn.ReLU(inplace=True),
                ]
            layers.append(nn.MaxPool2d(2))
            previous = c
        self.features = nn.Sequential(*layers)
        self.width = channels[-1]

    def forward(self, pixel_values: torch.Tensor) -> Encoded:
        fmap = self.features(self.augment(pixel_values))
        tokens = fmap.flatten(2).transpose(1, 2)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return Encoded(tokens, mask, tokens.mean(1))


class VisionEncoder(nn.Module):
    """A Hugging Face vision model (ViT, ConvNeXt, ...), maybe peft-wrapped."""

    pretrained = True

    def __init__(self, model: nn.Module, width: int, augment: dict[str, Any] | None) -> None:
        super().__init__()
        self.model = model
        self.width = width
        self.augment = Augment(**augment) if augment else nn.Identity()

    def forward(self, pixel_values: torch.Tensor) -> Encoded:
        out: Any = self.model(pixel_values=self.augment(pixel_values))
        hidden = out.last_hidden_state
        tokens = hidden.flatten(2).transpose(1, 2) if hidden.ndim == 4 else hidden  # conv nets: cells
        pooled = getattr(out, "pooler_output", None)
        if pooled is None or pooled.ndim != 2:
            pooled = tokens.mean(1)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return Encoded(tokens, mask, pooled)


class NumberEncoder(nn.Module):
    """A z-scored number and its missing flag, projected to a small vector."""

    pretrained = False

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.project = nn.Linear(2, width)
        self.width = width

    def forward(self, values: torch.Tensor) -> Encoded:
        return _single(self.project(values))


class CategoryEncoder(nn.Module):
    """An embedding per known value; row 0, the unknown bucket, is fixed at zero."""

    pretrained = False

    def __init__(self, size: int, width: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(size, width, padding_idx=0)
        self.width = width

    def forward(self, ids: torch.Tensor) -> Encoded:
        return _single(self.embedding(ids))
