"""`--optimize onnx`: run a fine-tuned text classifier with ONNX Runtime on the CPU.

The classifier (its adapter merged into the base weights first) is exported from torch
to an ONNX graph in memory and handed to ONNX Runtime with all graph optimisations on.
The arithmetic stays fp32, so outputs equal torch's to about 1e-6 (nothing to trade, unlike
int8), while each forward pass costs less: on this project's 2-core CPU, MiniLM on
groups of 8 Banking77 texts ran 1.25-1.3x faster at one thread, and about 2x on single
texts, where torch's per-call overhead dominates. Nothing is written to disk,
so an encrypted workspace stays encrypted. onnxruntime and onnx come with `llmos[onnx]`.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import torch
from torch import nn

from llmos.core.errors import UsageError, first_line

OPSET = 17


class OnnxClassifier(nn.Module):
    """An exported classifier behind the torch module interface `Predictor` calls:
    (input_ids, attention_mask) in, logits out. ONNX Runtime releases the GIL while it
    runs and its sessions may be called from several threads at once."""

    def __init__(self, session: Any, graph_bytes: int) -> None:
        super().__init__()
        self.session = session
        self.graph_bytes = graph_bytes  # the weights live in ONNX Runtime, not in torch parameters

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        feeds = {
            "input_ids": input_ids.detach().cpu().to(torch.int64).numpy(),
            "attention_mask": attention_mask.detach().cpu().to(torch.int64).numpy(),
        }
        return torch.from_numpy(self.session.run(None, feeds)[0])


def _runtime() -> Any:
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
        import onnxruntime
    except ImportError:
        raise UsageError("--optimize onnx needs onnxruntime and onnx: pip install 'llmos[onnx]'") from None
    return onnxruntime


def to_onnx(model: nn.Module) -> OnnxClassifier:
    """`model` (a `SequenceClassifier`, maybe over a peft encoder) as an ONNX Runtime
    session with as many intra-op threads as torch uses (`llmos serve --workers` sets them)."""
    ort = _runtime()
    model = model.cpu().eval()
    encoder = getattr(model, "encoder", None)
    if encoder is not None and hasattr(encoder, "merge_and_unload"):
        model.encoder = encoder.merge_and_unload()  # LoRA/IA3: one set of weights, no adapter branch
    # the example batch is padded like real ones, so tracing follows the masked path
    input_ids = torch.ones((2, 8), dtype=torch.long)  # any id inside every vocabulary
    attention_mask = torch.ones((2, 8), dtype=torch.long)
    attention_mask[1, 5:] = 0
    buffer: Any = io.BytesIO()  # torch's signature names paths; it writes to file objects too
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer notes on Python-side shape checks
            torch.onnx.export(
                model,
                (input_ids, attention_mask),
                buffer,
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "logits": {0: "batch"},
                },
                opset_version=OPSET,
                dynamo=False,
            )
    except Exception as exc:
        raise UsageError(
            f"--optimize onnx: this model could not be exported to ONNX: {first_line(exc)}"
        ) from exc
    graph = buffer.getvalue()
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    return OnnxClassifier(session, len(graph))
