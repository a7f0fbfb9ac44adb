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
from llmos.modalities.prompt import ExamplePool, label_words
from llmos.models.kinds import model_kind
from llmos.models.kinds.prompt_classifier import PromptClassifierKind
from llmos.spec.schema import FewShotMethod, TaskSpec, ZeroShotMethod
from llmos.store.db import Store
from llmos.train.predict import Predictor
from llmos.train.workflow import Prepared, RunResult, write_report


def prompt_predictor(
    config: dict[str, Any],
    tokenizer: Any,
    lm: Any,
    output: OutputDriver,
    placement: Any,
    artifacts_dir: Path | None,
    pool: ExamplePool | None = None,
) -> Predictor:
    """The predictor of a zero-/few-shot classifier described by `config`."""
    parts = PromptClassifierKind.parts(config, tokenizer, lm, output, artifacts_dir, pool)
    return Predictor(parts.model, parts.inputs, parts.output, placement, parts.batch_size)


def run_prompt_classifier(
    store: Store, spec: TaskSpec, prepared: Prepared, run_dir: Path, progress: Progress
) -> RunResult:
    import time

    from llmos.models.build import load_tokenizer
    from llmos.models.causal import load_causal_lm

    method = spec.method
    assert isinstance(method, ZeroShotMethod)  # FewShotMethod is one too
    resolved, splits = prepared.resolved, prepared.splits
    if resolved.kind is not None and not model_kind(resolved.kind).generates:
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
    if isinstance(method, FewShotMethod):
        from llmos.models.llm_classifier import SentenceEmbedder
        from llmos.models.zoo import resolve_model

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
