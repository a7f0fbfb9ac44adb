"""The one predict path: a trained model plus its drivers, used by training's final
evaluation, `llmos eval`, `llmos predict`, the SDK and (later) the server alike.

The model's inputs are one driver (text classification) or an `InputSet` (every other
task); both encode a table's columns into row features, so prediction takes a table,
a list of rows (dicts) or, for single-input models, a list of plain values.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from llmos.core.errors import UsageError
from llmos.core.progress import Progress
from llmos.modalities import OUTPUT_DRIVERS
from llmos.modalities.base import InputDriver, OutputDriver
from llmos.modalities.inputs import InputSet
from llmos.train.device import Placement, resolve_placement
from llmos.train.loop import predict_logits
from llmos.train.metrics import METRICS

# Padded tokens per inference batch on a CPU. Measured with MiniLM on batches of 64
# Banking77 requests at one thread: 256 gave about 3x the throughput of uncapped batches,
# 1.2x that of 512 and 2x that of 2048 (larger matrices fall out of this CPU's cache).
CPU_BATCH_TOKENS = 256


def _int8(model: nn.Module) -> nn.Module:
    from llmos.models.quantize import quantize_int8

    return quantize_int8(model)


def _onnx(model: nn.Module) -> nn.Module:
    from llmos.models.onnx import to_onnx

    return to_onnx(model)


def _onnx_int8(model: nn.Module) -> nn.Module:
    from llmos.models.onnx import to_onnx

    return to_onnx(model, int8=True)


# `--optimize` choices for text classifiers (CPU inference): a faster copy of the model
OPTIMIZERS = {"int8": _int8, "onnx": _onnx, "onnx-int8": _onnx_int8}
AUTO = "auto"  # a deployment's default: onnx for a whole classifier on a CPU, else torch


class Predictor:
    def __init__(
        self,
        model: nn.Module,
        input_driver: InputDriver | InputSet,
        output_driver: OutputDriver,
        placement: Placement,
        batch_size: int = 128,
        max_tokens: int | None = None,
    ) -> None:
        self.model = model.to(placement.device).eval()
        self.input = input_driver
        self.output = output_driver
        self.placement = placement
        self.batch_size = batch_size
        # a batch's cost on a CPU is its padded size: cap it (see train/batching.py)
        self.max_tokens = max_tokens or (CPU_BATCH_TOKENS if placement.device.type == "cpu" else None)
        # predict may run in several threads at once (the server's batch workers): the
        # forward pass is read-only, but a fast tokenizer must not be called concurrently
        self._encode_lock = threading.Lock()

    @classmethod
    def from_folder(
        cls,
        folder: Path,
        artifacts_dir: Path | None = None,
        device: str = "auto",
        optimize: str | None = None,
    ) -> Predictor:
        """Load a saved model; `optimize` runs a text classifier faster on the CPU: "int8"
        quantises its linear layers, "onnx" runs it with ONNX Runtime (fp32), "onnx-int8"
        with ONNX Runtime on int8 weights, and "auto" (what a deployment of a whole
        classifier runs by default) is "onnx" when the model lands on a CPU, with its graph
        cached in `folder`, and torch when a GPU takes it or the export fails (one log line)."""
        from llmos.models.build import read_model_config
        from llmos.models.kinds import kind_of

        cfg = read_model_config(folder)
        kind = kind_of(cfg)
        if optimize == AUTO and kind.optimizable:
            from llmos.models.onnx import serving_model

            parts = kind.load(folder, cfg, artifacts_dir)
            placement = resolve_placement(device, "auto")
            model = parts.model
            if placement.device.type == "cpu":
                model = serving_model(model, f"model {folder.parent.name}@{folder.name}", cache=folder)
            return cls(model, parts.inputs, parts.output, placement, parts.batch_size)
        if optimize == AUTO:
            optimize = None
        if optimize is not None:
            if optimize not in OPTIMIZERS or not kind.optimizable:
                raise UsageError(
                    f"optimize {optimize!r}: only {' or '.join(OPTIMIZERS)}, for fine-tuned text classifiers"
                )
            parts = kind.load(folder, cfg, artifacts_dir)
            model = OPTIMIZERS[optimize](parts.model)
            return cls(model, parts.inputs, parts.output, resolve_placement("cpu", "auto"), parts.batch_size)
        parts = kind.load(folder, cfg, artifacts_dir)
        placement = resolve_placement(device, "auto")
        return cls(parts.model, parts.inputs, parts.output, placement, parts.batch_size)

    @classmethod
    def from_loaded(
        cls, model: nn.Module, tokenizer: Any, config: dict[str, Any], device: str = "auto"
    ) -> Predictor:
        """A text classifier already in memory (the server builds these over a shared base model)."""
        from llmos.modalities import INPUT_DRIVERS

        driver = INPUT_DRIVERS[config["input"]["type"]].from_state(config["input"], tokenizer)
        output = OUTPUT_DRIVERS[config["output"]["type"]].from_state(config["output"])
        return cls(model, driver, output, resolve_placement(device, "auto"))

    @property
    def columns(self) -> list[str]:
        """The input columns a row needs."""
        return self.input.columns

    def as_frame(self, values: Sequence[Any] | pd.DataFrame) -> pd.DataFrame:
        """Rows to predict as a table: a table, dicts keyed by column, or plain values
        for a single-input model."""
        if isinstance(values, pd.DataFrame):
            return values
        if values and all(isinstance(v, dict) for v in values):
            return pd.DataFrame(list(values))
        if len(self.columns) > 1:
            raise UsageError(
                f"this model reads {len(self.columns)} inputs ({', '.join(self.columns)}): "
                "give each row as a dict of them, or a file with those columns"
            )
        return pd.DataFrame({self.columns[0]: list(values)})

    def features(self, frame: pd.DataFrame, source: str = "input") -> list[Any]:
        """`frame`'s rows encoded for the model (token ids for text), before batching."""
        with self._encode_lock:
            return list(self.input.encode_frame(frame, source))

    def decode(self, logits: torch.Tensor) -> list[dict[str, Any]]:
        """The answers (label, score, ...) of one logits row per input."""
        return self.output.decode(self.output.probabilities(logits))

    def _logits(self, frame: pd.DataFrame, source: str, progress: Progress | None) -> torch.Tensor:
        features = self.features(frame, source)
        lengths = [self.input.length(f) for f in features]
        if progress is not None:
            progress.start("predicting", len(features))
        logits = predict_logits(
            self.model,
            self.input.collate,
            features,
            lengths,
            self.batch_size,
            self.placement,
            progress,
            self.max_tokens,
        )
        if progress is not None:
            progress.finish()
        return logits

    def logits(self, values: Sequence[Any] | pd.DataFrame, progress: Progress | None = None) -> torch.Tensor:
        return self._logits(self.as_frame(values), "input", progress)

    def predict(
        self, values: Sequence[Any] | pd.DataFrame, progress: Progress | None = None, source: str = "input"
    ) -> list[dict[str, Any]]:
        if len(values) == 0:
            return []
        return self.decode(self._logits(self.as_frame(values), source, progress))

    def predict_frame(
        self,
        frame: pd.DataFrame,
        column: str | None = None,
        progress: Progress | None = None,
        source: str = "input",
    ) -> pd.DataFrame:
        """`frame` with the output's prediction columns (for classifiers the label, or
        labels joined by '|', its score and a `p_<label>` probability per label). The model
        reads its input columns (`columns`); `column` names another column for a
        single-input model's one input."""
        inputs = frame
        if column is not None:
            if len(self.columns) > 1:
                raise UsageError(
                    f"a column is for single-input models; this one reads {', '.join(self.columns)}"
                )
            inputs = pd.DataFrame({self.columns[0]: frame[column]})
        rows = self.predict(inputs[self.columns], progress, source=source)
        result = frame.copy()
        for key, values in self.output.to_columns(rows).items():
            result[key] = values
        return result

    def evaluate(self, frame: pd.DataFrame, source: str, progress: Progress | None = None) -> dict[str, Any]:
        """Metrics of this model on `frame` (which must hold the input and label columns)."""
        self.input.check_column(frame, source)
        self.output.check_column(frame, source)
        targets = self.output.encode(frame[self.output.column], source)
        logits = self._logits(frame, source, progress)
        loss = round(float(self.output.loss(logits, targets)), 5)
        pred = self.output.predicted(self.output.probabilities(logits))
        truth = self.output.target_array(targets)
        evaluate: Any = METRICS[self.output.metric_kind]
        metrics: dict[str, Any] = evaluate(truth, pred, self.output.labels)
        return {"loss": loss, **metrics}
