"""Task names, and the rules that tie a task to its input and output types.

Kept apart from `schema.py` so the schema stays a list of fields; the spec's validators
call these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

TaskName = Literal[
    "text-classification",
    "generation",
    "token-classification",
    "image-classification",
    "tabular-classification",
    "tabular-regression",
    "multimodal-classification",
    "multimodal-regression",
]
TASKS: tuple[str, ...] = get_args(TaskName)
TABULAR = {"number", "category"}


def infer_task(input_types: Sequence[Any], output_types: Sequence[Any]) -> str:
    """The task a spec without `task` describes, from its input and output types."""
    regression = "number" in output_types
    if "chat" in input_types or "text" in output_types:
        return "generation"
    if "tags" in output_types or "tokens" in input_types:
        return "token-classification"
    if list(input_types) == ["text"]:
        return "text-classification"
    if list(input_types) == ["image"]:
        return "image-classification"
    if input_types and set(input_types) <= TABULAR:
        return "tabular-regression" if regression else "tabular-classification"
    return "multimodal-regression" if regression else "multimodal-classification"


def check_task(spec: Any) -> None:
    """Raise ValueError when the task, its inputs, output and model do not fit together;
    fill in a generation task's default settings."""
    from llmos.spec.schema import PROMPT_METHODS, GenerationConfig

    feature = spec.inputs[0]
    output = spec.outputs[0] if spec.outputs else None
    if spec.task == "generation":
        if len(spec.inputs) > 1:
            raise ValueError("a generation task reads one input")
        if spec.model is None:
            raise ValueError("model: required (a causal LM: zoo alias, Hugging Face id or folder)")
        if spec.method.type in PROMPT_METHODS:
            raise ValueError(f"method {spec.method.type!r} is for text-classification, not generation")
        if output is not None and output.type != "text":
            raise ValueError("a generation task's output is a `text` column (the response)")
        if feature.type == "text" and output is None:
            raise ValueError("a prompt column (`text` input) needs a `text` output with the response")
        if feature.type == "chat" and output is not None:
            raise ValueError("a `chat` input holds the answers itself: leave `outputs` out")
        if spec.generation is None:
            spec.generation = GenerationConfig()
        return
    if spec.task == "text-classification" and feature.type != "text":
        raise ValueError(f"text-classification needs a `text` input, not {feature.type!r}")
    if output is None or output.type == "text":
        raise ValueError(
            f"{spec.task} needs one `category` or `set` output"
            if spec.task == "text-classification"
            else f"{spec.task} needs one output"
        )
    if spec.method.type in PROMPT_METHODS:
        if spec.task != "text-classification":
            raise ValueError(f"method {spec.method.type!r} is for text-classification")
        if output.type != "category":
            raise ValueError(f"method {spec.method.type!r} predicts one label: use a `category` output")
    if spec.generation is not None:
        raise ValueError("`generation` settings belong to task: generation")
    _check_features(spec)


def _check_features(spec: Any) -> None:
    types = [f.type for f in spec.inputs]
    out = spec.outputs[0].type
    names = [f.name for f in spec.inputs]
    if len(set(names)) != len(names):
        raise ValueError("inputs: every input needs its own column name")
    if "chat" in types:
        raise ValueError("inputs: a `chat` input is for task: generation")
    expected = {
        "text-classification": types == ["text"],
        "token-classification": types == ["tokens"] and out == "tags",
        "image-classification": types == ["image"],
        "tabular-classification": set(types) <= TABULAR,
        "tabular-regression": set(types) <= TABULAR,
    }.get(spec.task, "tokens" not in types)
    if not expected:
        raise ValueError(
            f"task {spec.task!r} does not fit inputs of type {', '.join(types)}; "
            f"leave `task` out to infer it (here: {infer_task(types, [out])!r})"
        )
    if spec.task == "text-classification" and spec.inputs[0].encoder is not None:
        raise ValueError("inputs.0.encoder: text classification uses the spec's `model` and `method`")
    regression = spec.task.endswith("-regression")
    if (out == "tags") != (spec.task == "token-classification") or (out == "number") != regression:
        raise ValueError(f"task {spec.task!r} cannot have an output of type {out!r}")
    needs_model = any(
        f.type == "tokens" or (f.type == "text" and (f.encoder is None or f.encoder.model is None))
        for f in spec.inputs
    )
    if needs_model and spec.model is None:
        raise ValueError("model: required for text inputs (a zoo alias, Hugging Face id or folder)")
    stop = spec.train.early_stopping
    if out == "number" and stop is not None and stop.metric != "loss":
        raise ValueError("train.early_stopping.metric: regression watches the validation loss")
