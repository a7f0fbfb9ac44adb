"""Zero- and few-shot classification with an LLM: no training, the same report.

`run_prompt_classifier` is what `llmos train` does for `method: zero-shot | few-shot`: it
fits the label vocabulary on the training split, (few-shot) embeds the training rows as
the example pool, evaluates on the test split through the ordinary `Predictor`, and
writes a model folder that `llmos eval`, `llmos predict` and the server load like any
other model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmos.core.errors import ModelError
from llmos.core.progress import Progress
from llmos.modalities import OUTPUT_DRIVERS
from llmos.modalities.base import OutputDriver
from llmos.modalities.chat import ChatFormat
from llmos.modalities.prompt import ExamplePool, LabelPromptDriver, label_words
from llmos.spec.schema import FewShotMethod, TaskSpec, ZeroShotMethod
from llmos.store.db import Store
from llmos.train.predict import Predictor
from llmos.train.run import Prepared, RunResult, write_report


def prompt_predictor(
    config: dict[str, Any],
    tokenizer: Any,
    lm: Any,
    output: OutputDriver,
    placement: Any,
    artifacts_dir: Path | None,
    pool: ExamplePool | None = None,
    batch_size: int = 8,
) -> Predictor:
    """The predictor of a zero-/few-shot classifier described by `config`."""
    from llmos.models.llm_classifier import LabelScorer, SentenceEmbedder
    from llmos.models.zoo import resolve_model

    chat = ChatFormat(tokenizer, config.get("chat_template"))
    embed = None
    if config["method"] == "few-shot":
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
    return Predictor(scorer, driver, output, placement, batch_size)


def load_prompt_predictor(
    folder: Path, config: dict[str, Any], artifacts_dir: Path | None, placement: Any
) -> Predictor:
    from llmos.models.build import load_tokenizer
    from llmos.models.causal import load_causal_lm
    from llmos.models.llm_classifier import load_pool
    from llmos.models.zoo import resolve_model

    lm = load_causal_lm(resolve_model(config["base_model"], artifacts_dir).path).eval()
    saved = load_pool(folder)
    pool = ExamplePool(*saved) if saved is not None else None
    output = OUTPUT_DRIVERS[config["output"]["type"]].from_state(config["output"])
    tokenizer = load_tokenizer(str(folder / "tokenizer"))
    return prompt_predictor(config, tokenizer, lm, output, placement, artifacts_dir, pool)


def run_prompt_classifier(
    store: Store, spec: TaskSpec, prepared: Prepared, run_dir: Path, progress: Progress
) -> RunResult:
    import time

    from llmos.models.build import load_tokenizer
    from llmos.models.causal import load_causal_lm

    method = spec.method
    assert isinstance(method, ZeroShotMethod)  # FewShotMethod is one too
    resolved, splits = prepared.resolved, prepared.splits
    if resolved.kind == "encoder":
        raise ModelError(f"{method.type} classification needs a causal LLM; {resolved.name} is an encoder")
    output = OUTPUT_DRIVERS["category"].fit(spec.output.name, splits.train[spec.output.name])
    output.encode(splits.test[output.column], prepared.test_source)  # unseen test labels fail now
    unknown = sorted(set(method.labels or {}) - set(output.labels))
    if unknown:
        raise ModelError(f"method.labels names labels the data does not have: {', '.join(unknown)}")
    started = time.perf_counter()
    lm = load_causal_lm(resolved.path).eval().to(prepared.placement.device)
    tokenizer = load_tokenizer(resolved.path)
    config: dict[str, Any] = {
        "task": spec.task,
        "base_model": resolved.alias or resolved.path,
        "method": method.type,
        "label_words": label_words(output.labels, method.labels),
        "instruction": method.instruction,
        "score": method.score,
        "chat_template": None,
        "input": {"type": "label-prompt", "column": spec.text_input.name},
        "output": output.state(),
    }
    pool = None
    if method.type == "few-shot":
        from llmos.models.llm_classifier import SentenceEmbedder
        from llmos.models.zoo import resolve_model

        assert isinstance(method, FewShotMethod)
        config.update(k=method.k, embedder=method.embedder)
        embedder = SentenceEmbedder(resolve_model(config["embedder"], store.settings.artifacts_dir))
        texts = splits.train[spec.text_input.name].astype(str).tolist()
        progress.log(f"embedding {len(texts)} training rows as few-shot examples")
        labels = output.encode(splits.train[output.column], prepared.train_source).tolist()
        pool = ExamplePool(texts, labels, embedder(texts))
    predictor = prompt_predictor(
        config, tokenizer, lm, output, prepared.placement, store.settings.artifacts_dir, pool
    )
    progress.log(f"{method.type} classification with {resolved.name}, {len(output.labels)} labels")
    metrics = predictor.evaluate(splits.test, prepared.test_source, progress)
    seconds = time.perf_counter() - started
    metrics.update(train_seconds=0.0, eval_seconds=round(seconds, 2), trainable_parameters=0)
    folder = run_dir / "model"
    from llmos.models.llm_classifier import save_prompt_classifier

    save_prompt_classifier(
        folder,
        tokenizer,
        config,
        pool.texts if pool else None,
        pool.labels if pool else None,
        pool.embeddings if pool else None,
    )
    write_report(folder, spec, metrics, [], f"{spec.name} on {prepared.test_source}")
    return folder, metrics, [], 0.0
