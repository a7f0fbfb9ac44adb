"""Device placement and mixed precision, decided once per run."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch

from llmos.core.errors import UsageError


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, None for full fp32

    def autocast(self) -> AbstractContextManager[object]:
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def describe(self) -> str:
        precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.dtype, "fp32")  # type: ignore[arg-type]
        return f"{self.device.type} ({precision})"


def resolve_placement(device: str = "auto", precision: str = "auto") -> Placement:
    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("train.device is 'cuda' but no CUDA GPU is available; use 'auto' or 'cpu'")
    if device == "mps" and not torch.backends.mps.is_available():
        raise UsageError("train.device is 'mps' but MPS is not available; use 'auto' or 'cpu'")
    dtype: torch.dtype | None = None
    if precision == "auto":
        if device == "cuda" and torch.cuda.is_bf16_supported():
            dtype = torch.bfloat16
    elif precision == "bf16":
        dtype = torch.bfloat16
    elif precision == "fp16":
        if device == "cpu":
            raise UsageError("train.precision 'fp16' needs a GPU; use 'bf16' or 'fp32' on CPU")
        dtype = torch.float16
    return Placement(torch.device(device), dtype)
