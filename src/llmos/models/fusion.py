"""The fusion model: one encoder per input, a combiner, a head. Every task other than
text classification (token tagging, images, tabular, multimodal) is this model.

It is built from a plain-JSON description (`config["encoders"]`, `config["combiner"]`),
the same at training time and at load time, so a saved model is that description plus
the weights that differ from the base models: every trainable parameter (adapters,
fully trained encoders, from-scratch encoders, combiner, head) and every buffer
(batch-norm statistics). Loading rebuilds the model from the description, with the
pretrained bases from the zoo, and copies those weights in.

Token tagging reads the text encoder's token vectors at each word's first sub-word
(`word_starts` from the tokens driver) and applies the head to each, so its logits are
per word; padding slots are NaN (see `modalities.tokens`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llmos.core.errors import ModelError
from llmos.models.combiners import COMBINERS
from llmos.models.encoders import (
    CategoryEncoder,
    ConvNet,
    NumberEncoder,
    TextEncoder,
    VisionEncoder,
)

WEIGHTS_FILE = "weights.safetensors"
PAD_WORD, CUT_WORD = -1, -2  # as in modalities.tokens


class FusionModel(nn.Module):
    def __init__(
        self,
        columns: list[str],
        encoders: list[nn.Module],
        combiner: nn.Module | None,
        width: int,
        num_outputs: int,
        dropout: float,
        per_word: bool = False,
    ) -> None:
        super().__init__()
        self.columns = columns
        self.encoders = nn.ModuleList(encoders)
        self.combiner = combiner
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_outputs)
        self.per_word = per_word
        # new (randomly initialised) parts train at the head's learning rate
        fresh = [f"encoders.{i}." for i, e in enumerate(encoders) if not getattr(e, "pretrained", False)]
        self.head_prefixes = ("head.", "combiner.", *fresh)

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        from llmos.modalities.inputs import split_batch

        parts = split_batch(batch)
        if self.per_word:
            inputs = dict(parts[self.columns[0]])
            starts = inputs.pop("word_starts")
            return self._per_word(self.encoders[0](**inputs).tokens, starts)
        encoded = [enc(**parts[col]) for col, enc in zip(self.columns, self.encoders)]
        assert self.combiner is not None
        return self.head(self.dropout(self.combiner(encoded)))

    def _per_word(self, tokens: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        index = starts.clamp(min=0).unsqueeze(-1).expand(-1, -1, tokens.shape[-1])
        logits = self.head(self.dropout(tokens.gather(1, index))).float()
        logits = logits.masked_fill((starts == CUT_WORD).unsqueeze(-1), 0.0)
        return logits.masked_fill((starts == PAD_WORD).unsqueeze(-1), math.nan)

    def adapted_encoders(self) -> list[nn.Module]:
        """The pretrained models inside, for per-step hooks of their peft method."""
        return [e.model for e in self.encoders if isinstance(e, TextEncoder | VisionEncoder)]


def _method(dump: dict[str, Any]) -> Any:
    from pydantic import TypeAdapter

    from llmos.spec.schema import MethodConfig

    return TypeAdapter(MethodConfig).validate_python(dump)


def _pretrained(entry: dict[str, Any], artifacts_dir: Path | None, total_steps: int) -> tuple[nn.Module, int]:
    from llmos.models.build import load_encoder
    from llmos.models.peft_methods import apply_method
    from llmos.models.zoo import resolve_model

    resolved = resolve_model(entry["model"], artifacts_dir)
    model = load_encoder(resolved.path)
    config = model.config
    width = getattr(config, "hidden_size", None) or (getattr(config, "hidden_sizes", None) or [None])[-1]
    if width is None:
        raise ModelError(f"model {entry['model']!r} has no hidden size in its config")
    return apply_method(model, _method(entry["method"]), total_steps), int(width)


def build_encoder(entry: dict[str, Any], artifacts_dir: Path | None, total_steps: int) -> nn.Module:
    kind = entry["kind"]
    if kind == "text":
        model, width = _pretrained(entry, artifacts_dir, total_steps)
        return TextEncoder(model, width, entry["pooling"])
    if kind == "vision":
        model, width = _pretrained(entry, artifacts_dir, total_steps)
        return VisionEncoder(model, width, entry.get("augment"))
    if kind == "cnn":
        return ConvNet(entry["channels"], entry.get("augment"))
    if kind == "number":
        return NumberEncoder(entry["width"])
    if kind == "category":
        return CategoryEncoder(entry["size"], entry["width"])
    raise ModelError(f"unknown encoder kind {kind!r} in the model config")


def build_fusion(config: dict[str, Any], artifacts_dir: Path | None = None) -> FusionModel:
    """The model `config` describes, with fresh heads and the bases' weights."""
    entries = config["encoders"]
    total_steps = int(config.get("total_steps", 0))
    encoders = [build_encoder(e, artifacts_dir, total_steps) for e in entries]
    widths = [int(getattr(e, "width")) for e in encoders]  # noqa: B009  (every encoder has one)
    per_word = config["output"]["type"] == "tags"
    combiner = None
    width = widths[0]
    if not per_word:
        options = dict(config["combiner"])
        kind = options.pop("type")
        combiner = COMBINERS[kind](widths, **options)
        width = options["hidden"]
    num_outputs = 1 if config["output"]["type"] == "number" else len(config["output"]["labels"])
    return FusionModel(
        [e["column"] for e in entries],
        encoders,
        combiner,
        width,
        num_outputs,
        config.get("dropout", 0.1),
        per_word,
    )


def save_fusion(model: FusionModel, tokenizers: dict[str, Any], config: dict[str, Any], dest: Path) -> None:
    from safetensors.torch import save_file

    from llmos.models.build import FORMAT_VERSION, MODEL_FILE

    dest.mkdir(parents=True, exist_ok=True)
    tensors = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
    state = model.state_dict()  # persistent buffers only (batch-norm statistics ...)
    tensors.update({n: b.detach().cpu().contiguous() for n, b in model.named_buffers() if n in state})
    save_file(tensors, str(dest / WEIGHTS_FILE))
    for i, column in enumerate(model.columns):
        if column in tokenizers:
            tokenizers[column].save_pretrained(dest / "tokenizers" / str(i))
    (dest / MODEL_FILE).write_text(json.dumps({"format": FORMAT_VERSION, **config}, indent=2))


def load_fusion(
    folder: Path, config: dict[str, Any], artifacts_dir: Path | None = None
) -> tuple[FusionModel, dict[str, Any]]:
    """A saved fusion model ready for inference, and its tokenizers by input column."""
    from safetensors.torch import load_file

    from llmos.models.build import load_tokenizer

    model = build_fusion(config, artifacts_dir)
    saved = load_file(str(folder / WEIGHTS_FILE))
    missing, unexpected = model.load_state_dict(saved, strict=False)
    if unexpected:
        raise ModelError(f"{folder}: saved weights do not fit the model (e.g. {unexpected[0]})")
    untrained = [n for n in missing if dict(model.named_parameters())[n].requires_grad]
    if untrained:
        raise ModelError(f"{folder}: weights missing for {untrained[0]}")
    model.eval()
    tokenizers = {
        column: load_tokenizer(str(folder / "tokenizers" / str(i)))
        for i, column in enumerate(model.columns)
        if (folder / "tokenizers" / str(i)).is_dir()
    }
    return model, tokenizers


def image_preprocessing(path: str) -> dict[str, Any]:
    """Input size, mean and deviation a pretrained vision model expects, from its folder
    (`preprocessor_config.json`, `config.json`); empty when it does not say."""
    folder = Path(path)
    found: dict[str, Any] = {}
    for name in ("config.json", "preprocessor_config.json"):
        file = folder / name
        if not file.exists():
            continue
        data = json.loads(file.read_text())
        if isinstance(data.get("image_size"), int):
            found["size"] = data["image_size"]
        size = data.get("size")
        if isinstance(size, int):
            found["size"] = size
        elif isinstance(size, dict) and ("height" in size or "shortest_edge" in size):
            found["size"] = int(size.get("height") or size["shortest_edge"])
        for key, ours in (("image_mean", "mean"), ("image_std", "std")):
            if isinstance(data.get(key), list) and len(data[key]) == 3:
                found[ours] = data[key]
    return found
