"""ONNX Runtime for fine-tuned text classifiers on the CPU: the default of a deployed
whole classifier (`llmos deploy` without `--optimize`), and `--optimize onnx`.

The classifier (its adapter merged into the base weights first) is exported from torch
to an ONNX graph and handed to ONNX Runtime with all graph optimisations on.
The arithmetic stays fp32, so outputs equal torch's to about 1e-6 (nothing to trade, unlike
int8), while each forward pass costs less: on this project's 2-core CPU, MiniLM on
groups of 8 Banking77 texts ran 1.25-1.3x faster at one thread, and about 2x on single
texts, where torch's per-call overhead dominates. Exporting MiniLM takes seconds, so the
graph is cached beside the model version's files (`cache=`: the workspace cache, or, in
an encrypted workspace, the private folder its plaintext weights are already decrypted
into, so nothing readable lands in the workspace); a version's files never change, so its
graph is exported once per torch version and opset. onnxruntime and onnx come with
`llmos[onnx]`; `serving_model` falls back to torch when they are missing or the export fails.

`--optimize onnx-int8` adds ONNX Runtime's dynamic int8 quantisation of the graph's
MatMul weights (activations quantised per batch): on MiniLM over SST-2 sentences
(13 tokens on average) it scored about 2.2-2.5x the texts per CPU-second of fp32 ONNX
(benchmarks/bench_watch.py reports the accuracy change next to it). The quantiser works
on files, so the graph passes through a private temporary folder removed at once; the
int8 graph is cached beside the fp32 one.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llmos.core.errors import UsageError, first_line
from llmos.core.logging import get_logger

OPSET = 17
log = get_logger("llmos.serve")


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


def graph_path(cache: Path, int8: bool = False) -> Path:
    """Where the exported graph of the model whose files are in `cache` is kept."""
    version = torch.__version__.replace("+", "-")
    suffix = "-int8" if int8 else ""
    return cache / "onnx" / f"classifier-opset{OPSET}-torch{version}{suffix}.onnx"


def to_onnx(model: nn.Module, cache: Path | None = None, int8: bool = False) -> OnnxClassifier:
    """`model` (a `SequenceClassifier`, maybe over a peft encoder) as an ONNX Runtime
    session with as many intra-op threads as torch uses (`llmos serve --workers` sets them);
    `int8`: with its MatMul weights dynamically quantised to int8; with `cache` (the model
    version's folder), the graph is read from there when an earlier load exported it, and
    written there (atomically) after an export."""
    ort = _runtime()
    path = graph_path(cache, int8) if cache is not None else None
    if path is not None and path.is_file():
        graph = path.read_bytes()
    else:
        graph = _export(model)
        if int8:
            graph = _quantize(graph)
        if path is not None:
            _keep(graph, path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle intra-op threads sleep rather than spin: on a CPU shared with the rest of the
    # ingest path (or other workers) spinning burns the cores they need
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    return OnnxClassifier(session, len(graph))


def serving_model(model: nn.Module, what: str, cache: Path | None = None) -> nn.Module:
    """The default of a whole text classifier on a CPU: its ONNX Runtime copy, or, when that
    cannot be had (no onnxruntime, an export or session error), `model` itself, said in one
    log line: a model that serves slower is better than one that does not serve."""
    try:
        return to_onnx(model, cache)
    except Exception as exc:  # any failure of an optional speed-up: serve with torch
        log.warning("%s: serving with torch, ONNX Runtime unavailable: %s", what, first_line(exc))
        return model


def _keep(graph: bytes, path: Path) -> None:
    """Write `graph` to `path` through a partial file, so a reader sees all of it or none;
    a cache that cannot be written (a read-only folder) only costs the next load an export."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(graph)
        os.replace(partial, path)
    except OSError as exc:
        log.warning("could not cache the ONNX graph at %s: %s", path, first_line(exc))
    finally:
        partial.unlink(missing_ok=True)


def _export(model: nn.Module) -> bytes:
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
    return bytes(buffer.getvalue())


def _quantize(graph: bytes) -> bytes:
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="llmos-int8-") as folder:
        source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(graph)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.disable(logging.WARNING)  # its advice to pre-process, on the root logger
            try:
                quantize_dynamic(source, target, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
            finally:
                logging.disable(logging.NOTSET)
        return target.read_bytes()
