"""Evaluation of generation models (trained by `workflows/generation.py`, the task's workflow).

Same loop, same registry as classification: the chat driver turns conversations into
token ids with loss on the assistant turns, `CausalLMTask` gives logits at those
positions, `NextTokenObjective` is the loss. Evaluation reports held-out perplexity,
exact match and ROUGE-L of generated answers against the references, and sample
generations before and after training (the base model's, then the tuned model's).
"""

from __future__ import annotations

import math
from typing import Any

from llmos.core.progress import Progress
from llmos.modalities.chat import ChatDriver, ChatFormat, Messages, NextTokenObjective
from llmos.spec.schema import TaskSpec
from llmos.train.loop import Rows, mean_token_loss
from llmos.train.metrics import exact_match, rouge_l


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
