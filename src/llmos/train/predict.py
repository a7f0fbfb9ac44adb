"""The one predict path: a trained model plus its drivers, used by training's final
evaluation, `llmos eval`, `llmos predict`, the SDK and (later) the server alike."""

from __future__ import annotations

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
from llmos.modalities.text import TextDriver
from llmos.train.device import Placement, resolve_placement
from llmos.train.loop import predict_logits
from llmos.train.metrics import classification_metrics, multilabel_metrics


class Predictor:
    def __init__(
        self,
        model: nn.Module,
        input_driver: InputDriver,
        output_driver: OutputDriver,
        placement: Placement,
        batch_size: int = 128,
    ) -> None:
        self.model = model.to(placement.device).eval()
        self.input = input_driver
        self.output = output_driver
        self.placement = placement
        self.batch_size = batch_size

    @classmethod
    def from_folder(
        cls,
        folder: Path,
        artifacts_dir: Path | None = None,
        device: str = "auto",
        optimize: str | None = None,
    ) -> Predictor:
        """Load a saved classifier; `optimize="int8"` quantises an encoder classifier for the CPU."""
        from llmos.models.build import load_classifier, read_model_config
        from llmos.spec.schema import PROMPT_METHODS

        config = read_model_config(folder)
        if optimize is not None:
            from llmos.models.quantize import quantize_int8

            if optimize != "int8" or config["method"] in PROMPT_METHODS:
                raise UsageError(f"optimize {optimize!r}: only int8, for fine-tuned encoder classifiers")
            loaded = load_classifier(folder, artifacts_dir)
            return cls.from_loaded(quantize_int8(loaded.model), loaded.tokenizer, loaded.config, "cpu")
        if config["method"] in PROMPT_METHODS:
            from llmos.train.prompting import load_prompt_predictor

            return load_prompt_predictor(folder, config, artifacts_dir, resolve_placement(device, "auto"))
        loaded = load_classifier(folder, artifacts_dir)
        return cls.from_loaded(loaded.model, loaded.tokenizer, loaded.config, device)

    @classmethod
    def from_loaded(
        cls, model: nn.Module, tokenizer: Any, config: dict[str, Any], device: str = "auto"
    ) -> Predictor:
        """A classifier already in memory (the server builds these over a shared base model)."""
        driver = TextDriver(config["input"]["column"], tokenizer, config["input"]["max_length"])
        output = OUTPUT_DRIVERS[config["output"]["type"]].from_state(config["output"])
        return cls(model, driver, output, resolve_placement(device, "auto"))

    def logits(self, texts: Sequence[Any], progress: Progress | None = None) -> torch.Tensor:
        features = self.input.encode(texts)
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
        )
        if progress is not None:
            progress.finish()
        return logits

    def predict(self, texts: Sequence[Any], progress: Progress | None = None) -> list[dict[str, Any]]:
        if not texts:
            return []
        probs = self.output.probabilities(self.logits(texts, progress))
        return self.output.decode(probs)

    def evaluate(self, frame: pd.DataFrame, source: str, progress: Progress | None = None) -> dict[str, Any]:
        """Metrics of this model on `frame` (which must hold the input and label columns)."""
        self.input.check_column(frame, source)
        self.output.check_column(frame, source)
        targets = self.output.encode(frame[self.output.column], source)
        logits = self.logits(frame[self.input.column].tolist(), progress)
        loss = round(float(self.output.loss(logits, targets)), 5)
        probs = self.output.probabilities(logits)
        pred = self.output.predicted(probs)
        if self.output.type_name == "set":
            metrics = multilabel_metrics(self.output.target_array(targets), pred, self.output.labels)
        else:
            metrics = classification_metrics(self.output.target_array(targets), pred, self.output.labels)
        return {"loss": loss, **metrics}
