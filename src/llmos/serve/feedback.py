"""Feedback on served predictions: checked here, stored by `store.feedback`.

One function per entry point, same checks for both: `submit_feedback` (the HTTP route
`POST /v1/deployments/{name}/feedback` and the SDK) and `import_feedback` (`llmos
feedback import FILE`, all-or-nothing). A feedback event names a served input by its
request id (and index, for requests with several inputs) and gives a correct label, a
rating (1-5) or a corrected answer. The label must be one of the labels of the model
version that answered, or one that earlier feedback on this deployment introduced;
`new_label` introduces a label the model does not know yet (a new intent), so a typo
is caught and a new intent is a deliberate choice. File rows without a request id are
labelled new data: they carry the model's input columns themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from llmos.core.errors import DataError, NotFoundError, UsageError
from llmos.store.audit import record as audit
from llmos.store.db import Store
from llmos.store.deployments import get_deployment
from llmos.store.feedback import FeedbackEntry, add_feedback, find_requests
from llmos.store.schema import Deployment, Feedback, ServedRequest

FIELDS = ("label", "rating", "answer")


@dataclass
class FeedbackItem:
    request_id: str | None = None
    index: int | None = None
    label: str | None = None
    rating: int | None = None
    answer: str | None = None
    new_label: bool = False
    inputs: dict[str, Any] | None = None  # a labelled new row (no request id)


@dataclass
class OutputSpec:
    """What a model answers: its output type, labels and input columns."""

    kind: str  # category | set | number | generation | other
    labels: list[str]
    separator: str
    inputs: list[str]

    @property
    def generates(self) -> bool:
        return self.kind == GENERATED


GENERATED = "generation"  # the `kind` of a model that writes text
SERVED_ITEMS = "items"  # the `kind` of a recommender: feedback is the clicked item


_SPECS: dict[tuple[str, str], OutputSpec] = {}


def output_spec(store: Store, model_ref: str) -> OutputSpec:
    """The output of model `NAME@V` (cached: versions never change)."""
    key = (str(store.settings.home), model_ref)
    if key in _SPECS:
        return _SPECS[key]
    from llmos.models.build import read_model_config
    from llmos.spec.tasks import task_rules
    from llmos.store.models import get_model, model_folder

    if "@" not in model_ref:  # a pretrained LM deployed by zoo alias
        spec = OutputSpec(GENERATED, [], "|", ["messages"])
    else:
        model = get_model(store, model_ref)
        if task_rules(model.task).generates:
            spec = OutputSpec(GENERATED, [], "|", ["messages"])
        elif task_rules(model.task).recommends:  # a click names a served item (`ops.recommend`)
            spec = OutputSpec(SERVED_ITEMS, [], "|", ["user", "items"])
        else:
            config = read_model_config(model_folder(store, model))
            out = config.get("output") or {}
            kind = out.get("type", "other")
            kind = kind if kind in ("category", "set", "number") else "other"
            if "input" in config:
                columns = [config["input"]["column"]]
                if config["input"].get("pair"):  # a text-pair input reads two columns
                    columns.append(config["input"]["pair"])
            else:
                columns = [s["column"] for s in config.get("inputs") or []]
            spec = OutputSpec(kind, list(out.get("labels") or []), out.get("separator", "|"), columns)
    _SPECS[key] = spec
    return spec


def _known_labels(store: Store, deployment: str) -> set[str]:
    with store.read() as session:
        query = select(Feedback.label).where(Feedback.deployment == deployment, Feedback.label.is_not(None))
        return {str(label) for label in session.scalars(query.distinct())}


def check_value(
    store: Store, deployment: Deployment, model_ref: str, item: FeedbackItem, where: str, extra: set[str]
) -> None:
    """Exactly one of label, rating, answer, fitting the model that answered."""
    given = [f for f in FIELDS if getattr(item, f) is not None]
    if len(given) != 1:
        what = "none" if not given else " and ".join(given)
        raise UsageError(f"{where}: give exactly one of label, rating or answer (got {what})")
    if item.rating is not None and not 1 <= item.rating <= 5:
        raise UsageError(f"{where}: rating {item.rating} is out of range; give 1 to 5")
    spec = output_spec(store, model_ref)
    if spec.generates:
        if item.label is not None:
            raise UsageError(
                f"{where}: deployment {deployment.name!r} generates text; send an answer, not a label"
            )
        return
    if spec.kind == SERVED_ITEMS:
        if item.label is None:
            raise UsageError(
                f"{where}: deployment {deployment.name!r} recommends items; send the clicked item as label"
            )
        return
    if item.answer is not None:
        raise UsageError(
            f"{where}: deployment {deployment.name!r} is a classifier; send the correct label, not an answer"
        )
    if item.label is None:
        return
    if spec.kind == "number":
        try:
            float(item.label)
        except ValueError:
            raise UsageError(
                f"{where}: label {item.label!r} is not a number; {model_ref} predicts numbers"
            ) from None
        return
    if spec.kind not in ("category", "set"):
        return
    parts = item.label.split(spec.separator) if spec.kind == "set" else [item.label]
    known = set(spec.labels) | extra
    for part in parts:
        if part in known or item.new_label:
            continue
        known |= _known_labels(store, deployment.name)  # new labels earlier feedback introduced
        extra |= known - set(spec.labels)
        if part in known:
            continue
        some = ", ".join(spec.labels[:8]) + (", ..." if len(spec.labels) > 8 else "")
        raise UsageError(
            f"{where}: label {part!r} is not one of the {len(spec.labels)} labels of {model_ref} ({some}); "
            "fix it, or set new_label to add a new label"
        )


def find_served(
    store: Store, deployment: Deployment, request_id: str, index: int | None, where: str
) -> ServedRequest | None:
    rows = find_requests(store, request_id)
    if not rows:
        return None
    if rows[0].deployment != deployment.name:
        raise UsageError(
            f"{where}: request {request_id!r} was served by deployment {rows[0].deployment!r}, "
            f"not {deployment.name!r}; send the feedback to that deployment"
        )
    if index is None:
        if len(rows) > 1:
            raise UsageError(
                f"{where}: request {request_id!r} had {len(rows)} inputs; give `index` 0 to {len(rows) - 1}"
            )
        index = 0
    matching = [r for r in rows if r.idx == index]
    if not matching:
        raise UsageError(
            f"{where}: request {request_id!r} has no input {index}; give `index` 0 to {len(rows) - 1}"
        )
    return matching[0]


def _served(store: Store, row: Deployment, item: FeedbackItem, flush: Callable[[], Any] | None) -> Any:
    """The served input `item` names: by its index, or, for a recommender, the served
    item it names as its label (a click)."""
    assert item.request_id is not None
    for attempt in range(2):
        if attempt and flush is not None:
            flush()
        rows = find_requests(store, item.request_id)
        clicks = rows and item.index is None and item.label is not None and rows[0].deployment == row.name
        if clicks and output_spec(store, rows[0].model).kind == SERVED_ITEMS:
            clicked = [r for r in rows if r.label == item.label]
            if not clicked and not attempt and flush is not None:
                continue  # the request's rows may be half written yet: flush, then look again
            if not clicked:
                raise UsageError(
                    f"label: item {item.label!r} is not one of the {len(rows)} items request "
                    f"{item.request_id!r} recommended"
                )
            return clicked[0]
        served = find_served(store, row, item.request_id, item.index, "request_id")
        if served is not None or flush is None:
            return served
    return None


def _not_found(request_id: str, deployment: str, where: str) -> NotFoundError:
    return NotFoundError(
        f"{where}: request id {request_id!r} not found for deployment {deployment!r}; use a `request_id` "
        "that a prediction of this deployment returned"
    )


def submit_feedback(
    store: Store, deployment: str, item: FeedbackItem, flush: Callable[[], Any] | None = None
) -> dict[str, Any]:
    """Check and durably store one feedback event; return what the API acknowledges.

    `flush` writes the server's queued request records, for feedback that follows its
    prediction faster than the request log."""
    row = get_deployment(store, deployment)
    if item.request_id is None:
        raise UsageError("request_id: give the request id a prediction returned")
    served = _served(store, row, item, flush)
    if served is None:
        raise _not_found(item.request_id, deployment, "request_id")
    check_value(store, row, served.model, item, "feedback", set())
    entry = FeedbackEntry(
        deployment, served=served, label=item.label, rating=item.rating, answer=item.answer, source="api"
    )
    (feedback_id,) = add_feedback(store, [entry])
    return {
        "feedback_id": feedback_id,
        "deployment": deployment,
        "request_id": served.request_id,
        "index": served.idx,
        "model": served.model,
    }


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    return value


def _items(frame: pd.DataFrame, path: Path, spec: OutputSpec) -> list[tuple[str, FeedbackItem]]:
    has_request = "request_id" in frame.columns
    if not any(f in frame.columns for f in FIELDS):
        raise DataError(f"{path}: no label, rating or answer column; add one of them")
    items = []
    for pos, record in enumerate(frame.to_dict("records")):
        where = f"{path} row {pos + 2 if path.suffix.lower() in ('.csv', '.tsv') else pos + 1}"
        values = {k: _cell(v) for k, v in record.items()}
        item = FeedbackItem(
            request_id=None if values.get("request_id") is None else str(values["request_id"]),
            label=None if values.get("label") is None else str(values["label"]),
            answer=None if values.get("answer") is None else str(values["answer"]),
            new_label=str(values.get("new_label")).strip().lower() in ("true", "1", "yes"),
        )
        for name in ("index", "rating"):
            raw = values.get(name)
            if raw is not None:
                try:
                    number = float(raw)
                except (TypeError, ValueError):
                    number = math.nan
                if not number.is_integer():
                    raise DataError(f"{where}: {name} {raw!r} is not a whole number")
                setattr(item, name, int(number))
        if item.request_id is None:
            missing = [c for c in spec.inputs if values.get(c) is None]
            if missing:
                need = "request_id" if not has_request else "a request_id"
                raise DataError(
                    f"{where}: no request id and no {', '.join(repr(c) for c in missing)}; "
                    f"give {need} or the model's input column(s) {', '.join(spec.inputs)}"
                )
            if item.label is None and item.answer is None:
                raise DataError(f"{where}: a new row without a request id needs a label (or answer)")
            item.inputs = {c: values[c] for c in spec.inputs}
        items.append((where, item))
    return items


def import_feedback(store: Store, path: Path, deployment: str, new_labels: bool = False) -> dict[str, Any]:
    """Import a CSV/JSONL file of feedback all-or-nothing: every row is checked before any is stored."""
    from llmos.store.datasets import detect_format, read_table

    row = get_deployment(store, deployment)
    fmt = detect_format(path, None)
    if fmt not in ("csv", "tsv", "jsonl", "parquet"):
        raise DataError(f"{path}: feedback files are CSV, TSV, JSONL or Parquet")
    frame = read_table(path, fmt)
    current = output_spec(store, row.model)
    entries = []
    extra: set[str] = set()
    for where, item in _items(frame, path, current):
        item.new_label = item.new_label or new_labels
        if item.request_id is not None:
            served = find_served(store, row, item.request_id, item.index, where)
            if served is None:
                raise _not_found(item.request_id, deployment, where)
            check_value(store, row, served.model, item, where, extra)
            entries.append(
                FeedbackEntry(
                    deployment,
                    served=served,
                    label=item.label,
                    rating=item.rating,
                    answer=item.answer,
                    source="import",
                )
            )
        else:
            check_value(store, row, row.model, item, where, extra)
            entries.append(
                FeedbackEntry(
                    deployment,
                    inputs=item.inputs,
                    label=item.label,
                    answer=item.answer,
                    source="import",
                    model=None,
                )
            )
        if item.new_label and item.label is not None:
            extra.add(item.label)
    ids = add_feedback(store, entries)
    linked = sum(1 for e in entries if e.served is not None)
    audit(store, "feedback.import", deployment, detail={"file": path.name, "rows": len(ids)})
    return {
        "deployment": deployment,
        "imported": len(ids),
        "on_requests": linked,
        "new_rows": len(ids) - linked,
        "first_id": ids[0],
        "last_id": ids[-1],
    }
