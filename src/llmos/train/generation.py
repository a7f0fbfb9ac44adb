"""The `generation` task: instruction tuning of a causal LM, and its evaluation.

Same loop, same registry as classification: the chat driver turns conversations into
token ids with loss on the assistant turns, `CausalLMTask` gives logits at those
positions, `NextTokenObjective` is the loss. Evaluation reports held-out perplexity,
exact match and ROUGE-L of generated answers against the references, and sample
generations before and after training (the base model's, then the tuned model's).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from llmos.core.errors import SpecError
from llmos.core.progress import Progress
from llmos.modalities.chat import ChatDriver, ChatFormat, Messages, NextTokenObjective, pack
from llmos.spec.schema import TaskSpec
from llmos.train.loop import Rows, fit, mean_token_loss, seed_everything, steps_per_epoch
from llmos.train.metrics import exact_match, rouge_l
from llmos.train.run import Prepared, RunResult, loop_settings, training_summary, write_report


def chat_driver(spec: TaskSpec, tokenizer: Any) -> ChatDriver:
    gen = spec.gen
    chat = ChatFormat(tokenizer, gen.chat_template, gen.system_prompt)
    feature = spec.inputs[0]
    response = spec.outputs[0].name if spec.outputs else None
    return ChatDriver(feature.name, chat, gen.max_length, gen.overflow, response)


def examples_rows(examples: list[Any]) -> Rows:
    return Rows(examples, [len(e.ids) for e in examples], None)


def split_prompt(conversation: Messages) -> tuple[Messages, str]:
    """The conversation up to its last assistant turn, and that turn (the reference)."""
    last = max(i for i, m in enumerate(conversation) if m["role"] == "assistant")
    return conversation[:last], conversation[last]["content"]


def generate_answers(
    lm: Any, chat: ChatFormat, conversations: list[Messages], max_new_tokens: int, batch_size: int = 16
) -> list[str]:
    """Greedy answers to each conversation's last prompt, decoded in batches."""
    from llmos.models.generation import Generator, SamplingParams

    generator = Generator(lm, chat.tokenizer, [chat.turn_end])
    answers: list[str] = []
    for start in range(0, len(conversations), batch_size):
        block = conversations[start : start + batch_size]
        prompts = [chat.prompt_ids(split_prompt(c)[0]) for c in block]
        params = [SamplingParams(max_new_tokens=max_new_tokens) for _ in block]
        answers.extend(c.text for c in generator.generate(prompts, params))
    return answers


def answer_metrics(answers: list[str], references: list[str]) -> dict[str, float]:
    if not answers:
        return {}
    return {
        "exact_match": round(sum(map(exact_match, answers, references)) / len(answers), 4),
        "rouge_l": round(sum(map(rouge_l, answers, references)) / len(answers), 4),
    }


def evaluate_generation(
    model: Any,
    driver: ChatDriver,
    conversations: list[Messages],
    samples: int,
    max_new_tokens: int,
    batch_size: int,
    placement: Any,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Perplexity on every conversation's answers; exact match and ROUGE-L on the first
    `samples` conversations' last answers. Returns the metrics and those answers."""
    rows = examples_rows(driver.encode_conversations(conversations, "evaluation data"))
    if progress is not None:
        progress.start("perplexity", len(rows))
    loss = mean_token_loss(model, driver.collate, NextTokenObjective(), rows, batch_size, placement, progress)
    if progress is not None:
        progress.finish()
    metrics: dict[str, Any] = {
        "loss": round(loss, 5),
        "perplexity": round(math.exp(min(loss, 50.0)), 4),
        "num_examples": len(rows),
    }
    chosen = conversations[:samples]
    answers = generate_answers(model.lm, driver.chat, chosen, max_new_tokens) if chosen else []
    metrics.update(answer_metrics(answers, [split_prompt(c)[1] for c in chosen]))
    return metrics, answers


def run_generation(spec: TaskSpec, prepared: Prepared, run_dir: Path, progress: Progress) -> RunResult:
    """Instruction-tune a causal LM; return its model folder, metrics and history."""
    from llmos.models.build import load_tokenizer
    from llmos.models.causal import build_causal_lm, context_length, save_causal_lm

    gen, cfg = spec.gen, spec.train
    resolved, splits, placement = prepared.resolved, prepared.splits, prepared.placement
    tokenizer = load_tokenizer(resolved.path)
    driver = chat_driver(spec, tokenizer)
    train_convs = driver.conversations(splits.train, prepared.train_source)
    test_convs = driver.conversations(splits.test, prepared.test_source)
    examples = driver.encode_conversations(train_convs, prepared.train_source)
    driver.encode_conversations(test_convs, prepared.test_source)  # overlong test rows fail now
    if gen.packing:
        examples = pack(examples, gen.max_length)
    train_rows = examples_rows(examples)
    val_rows = None
    if splits.validation is not None:
        val_convs = driver.conversations(splits.validation, prepared.val_source)
        val_rows = examples_rows(driver.encode_conversations(val_convs, prepared.val_source))

    settings = loop_settings(cfg, spec.method.type, spec.task)
    total_steps = steps_per_epoch(len(train_rows), cfg.batch_size, cfg.gradient_accumulation) * cfg.epochs
    seed_everything(cfg.seed)
    model = build_causal_lm(resolved, spec.method, total_steps)
    context = context_length(model.lm)
    if context is not None and gen.max_length > context:
        raise SpecError(
            f"generation.max_length ({gen.max_length}) is longer than the context of "
            f"{resolved.name} ({context} tokens)"
        )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    model.to(placement.device)
    progress.log(f"evaluating {resolved.name} before training")
    # before training: perplexity, and answers only for the samples shown in the report
    before, before_answers = evaluate_generation(
        model,
        driver,
        test_convs,
        gen.eval.show,
        gen.eval.max_new_tokens,
        cfg.eval_batch_size,
        placement,
        progress,
    )
    progress.log(
        f"training {spec.name}: {resolved.name} + {spec.method.type} on {placement.describe()}, "
        f"{len(train_rows)} sequences, {trainable:,} of {total:,} parameters trainable"
    )
    result = fit(
        model,
        driver.collate,
        NextTokenObjective(),
        train_rows,
        settings,
        placement,
        validation=val_rows,
        checkpoint_dir=run_dir / "checkpoints",
        progress=progress,
    )
    samples = max(gen.eval.samples, gen.eval.show)
    metrics, answers = evaluate_generation(
        model, driver, test_convs, samples, gen.eval.max_new_tokens, cfg.eval_batch_size, placement, progress
    )
    shown = []
    for conv, old, new in list(zip(test_convs, before_answers, answers))[: gen.eval.show]:
        prompt, reference = split_prompt(conv)
        shown.append({"prompt": prompt[-1]["content"], "reference": reference, "before": old, "after": new})
    metrics.update(
        before={k: before[k] for k in ("loss", "perplexity")},
        samples=shown,
        **training_summary(result, trainable, total),
    )
    folder = run_dir / "model"
    config = {
        "task": "generation",
        "base_model": resolved.alias or resolved.path,
        "method": spec.method.type,
        "chat_template": driver.chat.template,
        "system_prompt": gen.system_prompt,
        "max_length": gen.max_length,
        "input": {
            "type": "chat",
            "column": driver.column,
            "response_column": driver.response_column,
        },
    }
    save_causal_lm(model, tokenizer, config, folder)
    write_report(folder, spec, metrics, result.history, f"{spec.name} on {prepared.test_source}")
    return folder, metrics, result.history, result.train_seconds


def evaluate_llm(llm: Any, frame: Any, source: str, progress: Progress | None = None) -> dict[str, Any]:
    """`llmos eval` of a registered generation model on a dataset with the same columns."""
    from llmos.models.causal import CausalLMTask
    from llmos.train.device import resolve_placement

    config = llm.config
    driver = ChatDriver(
        config["input"]["column"],
        llm.format,
        config["max_length"],
        "truncate",
        config["input"].get("response_column"),
    )
    conversations = driver.conversations(frame, source)
    placement = resolve_placement("auto", "auto")
    metrics, answers = evaluate_generation(
        CausalLMTask(llm.lm), driver, conversations, len(conversations), 96, 16, placement, progress
    )
    metrics["samples"] = [
        {"prompt": split_prompt(c)[0][-1]["content"], "reference": split_prompt(c)[1], "answer": a}
        for c, a in list(zip(conversations, answers))[:5]
    ]
    return metrics
