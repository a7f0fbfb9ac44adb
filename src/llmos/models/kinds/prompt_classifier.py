"""`prompt-classifier`: a causal LLM that classifies without training (zero- and
few-shot): `LabelScorer` scores each label's words as the answer to a classification
prompt. Saved by `models.llm_classifier.save_prompt_classifier` (config, tokenizer,
few-shot example pool); the base LM is loaded from the zoo or hub by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmos.models.kinds import ModelKind, PredictorParts, register_kind
from llmos.spec.schema import METHOD_CONFIGS

PROMPT_BATCH = 8  # prompts per batch: each carries every label's answer pass


@register_kind
class PromptClassifierKind(ModelKind):
    name = "prompt-classifier"
    deployment = "classifier"
    has_head = False

    @classmethod
    def claims(cls, config: dict[str, Any]) -> bool:
        if "kind" in config:
            return config["kind"] == cls.name
        method = METHOD_CONFIGS.get(config.get("method", ""))
        return method is not None and method.prompting

    @classmethod
    def parts(
        cls,
        config: dict[str, Any],
        tokenizer: Any,
        lm: Any,
        output: Any,
        artifacts_dir: Path | None,
        pool: Any = None,
    ) -> PredictorParts:
        """The predictor parts of a zero-/few-shot classifier described by `config`."""
        from llmos.modalities.chat import ChatFormat
        from llmos.modalities.prompt import LabelPromptDriver
        from llmos.models.llm_classifier import LabelScorer, SentenceEmbedder
        from llmos.models.zoo import resolve_model

        chat = ChatFormat(tokenizer, config.get("chat_template"))
        embed = None
        if config.get("k", 0) and config.get("embedder"):  # few-shot: examples picked by similarity
            embed = SentenceEmbedder(resolve_model(config["embedder"], artifacts_dir))
        driver = LabelPromptDriver(
            config["input"]["column"],
            chat,
            config["label_words"],
            config.get("instruction"),
            config.get("k", 0),
            pool,
            embed,
        )
        scorer = LabelScorer(lm, config.get("score", "sum"))
        return PredictorParts(scorer, driver, output, PROMPT_BATCH)

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any], artifacts_dir: Path | None) -> PredictorParts:
        from llmos.modalities import OUTPUT_DRIVERS
        from llmos.modalities.prompt import ExamplePool
        from llmos.models.build import load_tokenizer
        from llmos.models.causal import load_causal_lm
        from llmos.models.llm_classifier import load_pool
        from llmos.models.zoo import resolve_model

        lm = load_causal_lm(resolve_model(config["base_model"], artifacts_dir).path).eval()
        saved = load_pool(folder)
        pool = ExamplePool(*saved) if saved is not None else None
        output = OUTPUT_DRIVERS[config["output"]["type"]].from_state(config["output"])
        tokenizer = load_tokenizer(str(folder / "tokenizer"))
        return cls.parts(config, tokenizer, lm, output, artifacts_dir, pool)
