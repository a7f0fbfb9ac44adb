"""`causal-lm`: a causal language model, pretrained (a zoo alias such as `smollm2-135m`,
a folder, a hub id) or instruction-tuned by the generation task (full weights or a peft
adapter, `models.causal`). Served for chat and completions (`models.llm.LLM`), exported
as merged weights or as its adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmos.models.kinds import ModelKind, register_kind
from llmos.spec.tasks import TASK_RULES


@register_kind
class CausalLMKind(ModelKind):
    name = "causal-lm"
    deployment = "generation"
    generates = True
    predicts = False
    has_head = False
    exports = ("merged", "adapter")

    @classmethod
    def claims(cls, config: dict[str, Any]) -> bool:
        if "kind" in config:
            return config["kind"] == cls.name
        rules = TASK_RULES.get(config.get("task", ""))
        return rules is not None and rules.generates

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        from llmos.models.causal import build_causal_lm

        return build_causal_lm(*args, **kwargs)

    @classmethod
    def save(cls, model: Any, tokenizer: Any, config: dict[str, Any], dest: Path) -> None:
        from llmos.models.causal import save_causal_lm

        save_causal_lm(model, tokenizer, config, dest)
