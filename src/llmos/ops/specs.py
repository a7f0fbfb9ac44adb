"""Specs: check a task spec (every problem with its path) and read the spec's JSON Schema."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import Field

from llmos.core.errors import LlmosError, NotFoundError, SpecError
from llmos.ops.context import Context
from llmos.ops.registry import operation
from llmos.ops.results import Result


class SpecCheck(Result):
    """A valid spec, as llmos reads it (defaults filled in)."""

    valid: bool = True
    name: str = Field(description="The name its model will be registered under")
    task: str
    summary: str = Field(
        description="Task and model in a few words, e.g. `text-classification, minilm + lora`"
    )
    spec: dict[str, Any] = Field(description="The spec with every default filled in")
    warnings: list[str] = Field(
        default_factory=list,
        description="What would stop training though the spec is valid: datasets not in this workspace",
    )


@operation("data:read")
def check_spec(ctx: Context, spec: dict[str, Any] | str, source: str = "spec") -> SpecCheck:
    """Check a task spec (a mapping, or its YAML text): a `SpecError` lists every problem
    with its path (`train.lr: must be > 0`); a valid spec comes back with its defaults
    filled in, and warnings for the datasets it names that this workspace does not hold."""
    from llmos.spec import parse_spec, parse_spec_text
    from llmos.store.datasets import get_dataset

    task = parse_spec_text(spec, source) if isinstance(spec, str) else parse_spec(spec, source)
    warnings = []
    for part in ("train", "validation", "test"):
        ref = getattr(task.data, part)
        if ref is None:
            continue
        try:
            get_dataset(ctx.store, ref)
        except LlmosError as exc:
            warnings.append(f"data.{part}: {exc.message}")
    model = f"{task.model.name} + {task.method.type}" if task.model else "no pretrained model"
    return SpecCheck(
        name=task.name,
        task=task.task,
        summary=f"{task.task}, {model}",
        spec=task.model_dump(mode="json"),
        warnings=warnings,
    )


@operation("data:read")
def spec_schema(ctx: Context) -> dict[str, Any]:
    """The JSON Schema of the task spec."""
    from llmos.spec import spec_json_schema

    schema: dict[str, Any] = json.loads(spec_json_schema())
    return schema


def spec_text(
    spec: dict[str, Any] | str | os.PathLike[str], source: str = "spec"
) -> tuple[dict[str, Any] | str, str]:
    """What `check_spec` sends: a mapping or YAML text as given, a file's text (named by its path)."""
    if isinstance(spec, (dict, str)):
        return spec, source
    path = Path(spec)
    if not path.exists():
        raise NotFoundError(f"{path}: no such spec file")
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not UTF-8 text") from None
