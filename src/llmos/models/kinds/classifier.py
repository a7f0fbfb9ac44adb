"""`classifier`: a pretrained encoder + pooling + a linear head (`SequenceClassifier`),
fine-tuned in full, frozen or through a peft method; the text-classification model.

Saved by `models.build.save_classifier` (head, tokenizer, and `encoder/` or `adapter/`).
It is the one kind the server can share a base for (several adapters of a shareable method
over one encoder), that `--optimize` speeds up on CPUs, and that `llmos adapt` retrains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmos.models.kinds import ModelKind, PredictorParts, register_kind
from llmos.spec.schema import METHOD_CONFIGS


@register_kind
class ClassifierKind(ModelKind):
    name = "classifier"
    priority = 0  # the fallback: folders saved without `kind`
    deployment = "classifier"
    optimizable = True
    adaptable = True

    @classmethod
    def claims(cls, config: dict[str, Any]) -> bool:
        return config.get("kind", cls.name) == cls.name  # the fallback of folders without `kind`

    @classmethod
    def shares_base(cls, config: dict[str, Any]) -> bool:
        method = METHOD_CONFIGS.get(config["method"])
        return "hidden_size" in config and method is not None and method.shareable

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        from llmos.models.build import build_classifier

        return build_classifier(*args, **kwargs)

    @classmethod
    def save(cls, model: Any, tokenizer: Any, config: dict[str, Any], dest: Path) -> None:
        from llmos.models.build import save_classifier

        save_classifier(model, tokenizer, config, dest)

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any], artifacts_dir: Path | None) -> PredictorParts:
        from llmos.modalities import INPUT_DRIVERS, OUTPUT_DRIVERS
        from llmos.models.build import load_classifier

        loaded = load_classifier(folder, artifacts_dir)
        # a `text` input, or a `text-pair` read jointly (cross-encoders)
        driver = INPUT_DRIVERS[config["input"]["type"]].from_state(config["input"], loaded.tokenizer)
        output = OUTPUT_DRIVERS[config["output"]["type"]].from_state(config["output"])
        return PredictorParts(loaded.model, driver, output)
