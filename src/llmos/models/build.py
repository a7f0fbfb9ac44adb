"""Build task models from a spec, save them to a folder and load them back.

A model folder holds `llmos_model.json` (task, base model, method, pooling, input and
output drivers' state), `head.safetensors`, the tokenizer, and either `encoder/` (full
fine-tuning: the whole encoder) or `adapter/` (peft: the adapter alone, applied to the
base model named in the json). Loading needs nothing but that folder and the base.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmos.core.errors import ModelError
from llmos.models.classifier import SequenceClassifier
from llmos.models.loading import load_encoder, load_tokenizer, quiet_transformers  # noqa: F401  (re-exported)
from llmos.models.zoo import ResolvedModel, resolve_model, sentence_pooling
from llmos.spec.schema import method_config

MODEL_FILE = "llmos_model.json"
FORMAT_VERSION = 1


@dataclass
class LoadedModel:
    """A task model with what is needed to encode inputs and decode outputs."""

    model: SequenceClassifier
    tokenizer: Any
    config: dict[str, Any]


def choose_pooling(requested: str, resolved: ResolvedModel) -> str:
    if requested != "auto":
        return requested
    declared = sentence_pooling(resolved.path) if resolved.local else None
    return declared or "mean"


def build_classifier(
    resolved: ResolvedModel,
    method_cfg: Any,
    num_outputs: int,
    pooling: str,
    dropout: float,
    total_steps: int,
) -> SequenceClassifier:
    from llmos.models.peft_methods import apply_method

    encoder = load_encoder(resolved.path)
    hidden = getattr(encoder.config, "hidden_size", None) or getattr(encoder.config, "d_model", None)
    if hidden is None:
        raise ModelError(f"model {resolved.name!r} has no hidden_size in its config")
    encoder = apply_method(encoder, method_cfg, total_steps)
    return SequenceClassifier(encoder, int(hidden), num_outputs, pooling, dropout)


def save_classifier(model: SequenceClassifier, tokenizer: Any, config: dict[str, Any], dest: Path) -> None:
    from safetensors.torch import save_file

    dest.mkdir(parents=True, exist_ok=True)
    head = {k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}
    save_file(head, str(dest / "head.safetensors"))
    keeps = method_config(config["method"]).keeps
    if keeps == "weights":
        model.encoder.save_pretrained(dest / "encoder", safe_serialization=True)  # type: ignore[operator]
    elif keeps == "adapter":  # a frozen encoder ("nothing") is the base model itself
        model.encoder.save_pretrained(dest / "adapter")  # type: ignore[operator]
    tokenizer.save_pretrained(dest / "tokenizer")
    (dest / MODEL_FILE).write_text(json.dumps({"format": FORMAT_VERSION, **config}, indent=2))


def read_model_config(folder: Path) -> dict[str, Any]:
    path = folder / MODEL_FILE
    if not path.exists():
        raise ModelError(f"{folder}: not an llmos model folder (no {MODEL_FILE})")
    config: dict[str, Any] = json.loads(path.read_text())
    if config.get("format", 0) > FORMAT_VERSION:
        raise ModelError(f"{folder}: saved by a newer llmos (format {config['format']})")
    return config


def load_classifier(folder: Path, artifacts_dir: Path | None = None, trainable: bool = False) -> LoadedModel:
    """Load a saved classifier (and its base model, for adapters) ready for inference; with
    `trainable`, the parameters its method trained require gradients again (continual
    fine-tuning starts from a registered version)."""
    from safetensors.torch import load_file

    config = read_model_config(folder)
    keeps = method_config(config["method"]).keeps
    if keeps == "weights":
        encoder = load_encoder(str(folder / "encoder"))
    elif keeps == "nothing":
        encoder = load_encoder(resolve_model(config["base_model"], artifacts_dir).path)
        encoder.requires_grad_(False)
    else:
        from peft import PeftModel

        base = resolve_model(config["base_model"], artifacts_dir)
        encoder = PeftModel.from_pretrained(
            load_encoder(base.path), str(folder / "adapter"), is_trainable=trainable
        )
    model = SequenceClassifier(
        encoder,
        int(config["hidden_size"]),
        len(config["output"]["labels"]),
        config["pooling"],
        config.get("dropout", 0.0),
    )
    model.head.load_state_dict(load_file(str(folder / "head.safetensors")))
    model.eval()
    tokenizer = load_tokenizer(str(folder / "tokenizer"))
    return LoadedModel(model=model, tokenizer=tokenizer, config=config)
