"""`fusion`: one encoder per input (text, vision, CNN, number, category), a combiner and a
head (`models.fusion.FusionModel`); the model of image, tabular and multimodal tasks.

Its config (`llmos_model.json`) lists the encoders, so `load` rebuilds exactly the
trained model over the pretrained bases it names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmos.models.kinds import ModelKind, PredictorParts, register_kind


@register_kind
class FusionKind(ModelKind):
    name = "fusion"
    deployment = "classifier"

    @classmethod
    def build(cls, config: dict[str, Any], artifacts_dir: Path | None = None) -> Any:
        from llmos.models.fusion import build_fusion

        return build_fusion(config, artifacts_dir)

    @classmethod
    def save(cls, model: Any, tokenizers: dict[str, Any], config: dict[str, Any], dest: Path) -> None:
        from llmos.models.fusion import save_fusion

        save_fusion(model, tokenizers, config, dest)

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any], artifacts_dir: Path | None) -> PredictorParts:
        from llmos.modalities import OUTPUT_DRIVERS
        from llmos.modalities.inputs import InputSet
        from llmos.models.fusion import load_fusion

        model, tokenizers = load_fusion(folder, config, artifacts_dir)
        output = OUTPUT_DRIVERS[config["output"]["type"]].from_state(config["output"])
        return PredictorParts(model, InputSet.from_state(config["inputs"], tokenizers), output)
