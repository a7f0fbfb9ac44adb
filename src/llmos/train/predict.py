"""The one predict path: a trained model plus its drivers, used by training's final
evaluation, `llmos eval`, `llmos predict`, the SDK and (later) the server alike."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

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
    def from_folder(cls, folder: Path, artifacts_dir: Path | None = None, device: str = "auto") -> Predictor:
        from llmos.models.build import load_classifier, read_model_config
        from llmos.spec.schema import PROMPT_METHODS

        config = read_model_config(folder)
        if config["method"] in PROMPT_METHODS:
            from llmos.train.prompting import load_prompt_predictor

            return load_prompt_predictor(folder, config, artifacts_dir, resolve_placement(device, "auto"))
        loaded = load_classifier(folder, artifacts_dir)
        cfg = loaded.config
        driver = TextDriver(cfg["input"]["column"], loaded.tokenizer, cfg["input"]["max_length"])
        out_state = cfg["output"]
        output = OUTPUT_DRIVERS[out_state["type"]].from_state(out_state)
        return cls(loaded.model, driver, output, resolve_placement(device, "auto"))

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

    def predict_frame(
        self, frame: pd.DataFrame, column: str, progress: Progress | None = None
    ) -> pd.DataFrame:
        """`frame` with the prediction (label, or labels joined by '|'), its score for
        single-label outputs, and a `p_<label>` probability column per label."""
        rows = self.predict(frame[column].astype(str).tolist(), progress)
        result = frame.copy()
        if rows and "label" in rows[0]:
            result["prediction"] = [r["label"] for r in rows]
            result["score"] = [r["score"] for r in rows]
        else:
            result["prediction"] = ["|".join(r["labels"]) for r in rows]
        for label in self.output.labels:
            result[f"p_{label}"] = [r["probabilities"][label] for r in rows]
        return result

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
