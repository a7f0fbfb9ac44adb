"""Reading specs: YAML in, a validated `TaskSpec` or a `SpecError` listing every problem."""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from llmos.core.errors import NotFoundError, SpecError
from llmos.spec.schema import TaskSpec

_REPLACEMENTS = (
    ("Input should be greater than or equal to", "must be >="),
    ("Input should be greater than", "must be >"),
    ("Input should be less than or equal to", "must be <="),
    ("Input should be less than", "must be <"),
    ("Input should be", "must be"),
    ("Value error, ", ""),
    ("Field required", "required"),
)


def _members(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside an annotation (through lists, unions and Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        found.extend(_members(arg))
    return found


def _tag(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("type")
    return field.default if field is not None else None


def _walk(loc: tuple[Any, ...]) -> tuple[str, list[str]]:
    """Readable path of an error location, and the keys allowed where it points.

    Pydantic puts the tag of a discriminated union (`lora` in `method.lora.r`) into the
    location; the path drops it and uses it to pick the union member.
    """
    current: type[BaseModel] | None = TaskSpec
    parts: list[str] = []
    pending: list[type[BaseModel]] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(str(part))
            continue
        if pending:
            tagged = [m for m in pending if _tag(m) == part]
            pending = []
            if tagged:
                current = tagged[0]
                continue
        fields = current.model_fields if current is not None else {}
        if current is not None and _tag(current) == part:
            continue
        parts.append(str(part))
        if part not in fields:
            current = None
            continue
        members = _members(fields[part].annotation)
        if len(members) == 1:
            current = members[0]
        else:
            current, pending = None, members
    keys = list(current.model_fields) if current is not None else []
    return ".".join(parts) or "(spec)", keys


def format_errors(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path, _ = _walk(loc)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            _, allowed = _walk(loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            msg = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
        elif err["type"] == "union_tag_invalid":
            ctx = err.get("ctx", {})
            msg = f"unknown type {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
        else:
            for old, new in _REPLACEMENTS:
                msg = msg.replace(old, new)
        problems.append(f"{path}: {msg}")
    return problems


def parse_spec(data: Any, source: str = "spec") -> TaskSpec:
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a spec is a YAML mapping of keys to values")
    try:
        return TaskSpec.model_validate(data)
    except ValidationError as exc:
        problems = format_errors(exc)
        summary = f"{source}: {len(problems)} problem{'s' if len(problems) > 1 else ''}: "
        raise SpecError(summary + "; ".join(problems), problems) from None


def load_spec(path: str | os.PathLike[str]) -> TaskSpec:
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"{path}: no such spec file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not UTF-8 text") from None
    return parse_spec_text(text, str(path))


def parse_spec_text(text: str, source: str = "spec") -> TaskSpec:
    """A spec from its YAML text; `source` names it in the messages."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SpecError(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    return parse_spec(data, source)


def spec_json_schema() -> str:
    return json.dumps(TaskSpec.model_json_schema(), indent=2)
