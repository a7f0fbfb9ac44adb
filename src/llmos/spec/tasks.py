"""Task names, and the rules that tie a task to its input and output types.

Kept apart from `schema.py` so the schema stays a list of fields; the spec's validators
call these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

TASKS = (
    "text-classification",
    "token-classification",
    "image-classification",
    "tabular-classification",
    "tabular-regression",
    "multimodal-classification",
    "multimodal-regression",
)
TaskName = Literal[
    "text-classification",
    "token-classification",
    "image-classification",
    "tabular-classification",
    "tabular-regression",
    "multimodal-classification",
    "multimodal-regression",
]
TABULAR = {"number", "category"}


def infer_task(input_types: Sequence[Any], output_types: Sequence[Any]) -> str:
    """The task a spec without `task` describes, from its input and output types."""
    regression = "number" in output_types
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
    """Raise ValueError when the task, its inputs, output and model do not fit together."""
    types = [f.type for f in spec.inputs]
    out = spec.outputs[0].type
    names = [f.name for f in spec.inputs]
    if len(set(names)) != len(names):
        raise ValueError("inputs: every input needs its own column name")
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
