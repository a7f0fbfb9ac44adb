"""`--optimize int8`: dynamic int8 quantisation of an encoder classifier for CPU serving.

torch's dynamic quantisation stores the weights of every `nn.Linear` in int8 and
quantises activations on the fly, which on a CPU makes BERT-style encoders (almost all
of whose compute is in linear layers) faster and about 4x smaller in their linear
weights, for a small change in accuracy that `llmos deploy --optimize int8` callers can
measure with `evaluate_int8`. torch marks this API as deprecated in favour of torchao,
which is not a dependency here; the warnings are silenced where it is called.
"""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of `model` with int8 weights in its linear layers (CPU inference only)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized: Any = torch.ao.quantization.quantize_dynamic(model.cpu(), {nn.Linear}, dtype=torch.qint8)
    return quantized.eval()
