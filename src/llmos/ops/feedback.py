"""Feedback on served predictions: submit one event (the data plane's
`POST /v1/deployments/{name}/feedback`), import a file of them, list them, and read the
labelled ones adapt learns from. Checks and storage are `llmos.serve.feedback` and
`llmos.store.feedback`; an event is acknowledged only once it is on disk.

Permissions: whoever may call a deployment (`predict`, app tokens for that deployment
only) may say what its answer should have been; importing a file is bringing in data
(`data:write`); reading feedback is `feedback:read`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field

from llmos.ops.context import Context
from llmos.ops.registry import operation
from llmos.ops.results import Result, Timestamp


class FeedbackReceipt(Result):
    feedback_id: int
    deployment: str
    request_id: str
    index: int
    model: str = Field(description="NAME@V of the model version that answered")


class FeedbackImport(Result):
    deployment: str
    imported: int
    on_requests: int = Field(description="Rows that name a served request")
    new_rows: int = Field(description="Labelled new rows (the model's input columns and a label)")
    first_id: int
    last_id: int


class FeedbackEvent(Result):
    feedback_id: int
    request_id: str | None = None
    index: int | None = None
    model: str | None = None
    label: str | None = None
    rating: int | None = None
    answer: str | None = None
    predicted: str | None = None
    source: str
    created_at: Timestamp


class LabelledFeedback(Result):
    feedback_id: int
    request_id: str | None = None
    model: str | None = None
    inputs: dict[str, Any] = Field(description="The model's input columns of the served (or imported) row")
    label: str | None = Field(None, description="The correct label (classifiers)")
    answer: str | None = Field(None, description="The corrected answer (generation deployments)")
    predicted: str | None = None
    created_at: Timestamp


@operation("predict", deployment="deployment")
def submit_feedback(
    ctx: Context,
    deployment: str,
    request_id: str,
    *,
    index: int | None = None,
    label: str | None = None,
    rating: int | None = None,
    answer: str | None = None,
    new_label: bool = False,
) -> FeedbackReceipt:
    """The correct label, a rating (1-5) or a corrected answer for a served prediction
    (`request_id` and, for multi-input requests, `index`); returns once durably stored."""
    from llmos.serve.feedback import FeedbackItem
    from llmos.serve.feedback import submit_feedback as submit

    item = FeedbackItem(
        request_id=request_id, index=index, label=None if label is None else str(label),
        rating=rating, answer=answer, new_label=new_label,
    )  # fmt: skip
    log = getattr(ctx.runtime, "request_log", None)  # a server's queued request records
    return FeedbackReceipt(**submit(ctx.store, deployment, item, None if log is None else log.flush))


@operation("data:write")
def import_feedback(
    ctx: Context, path: str | os.PathLike[str], deployment: str, *, new_labels: bool = False
) -> FeedbackImport:
    """Import a CSV/JSONL file of feedback (request_id + label/rating/answer, or the
    model's input columns + label for new data): every row is checked first, then all
    are stored or none."""
    from llmos.serve.feedback import import_feedback as import_file

    return FeedbackImport(**import_file(ctx.store, Path(path), deployment, new_labels))


@operation("feedback:read")
def feedback(ctx: Context, deployment: str, limit: int | None = None) -> list[FeedbackEvent]:
    """Feedback events of a deployment, newest first (the newest `limit`)."""
    from llmos.core.errors import UsageError
    from llmos.store.deployments import get_deployment
    from llmos.store.feedback import list_feedback

    if limit is not None and limit < 1:
        raise UsageError(f"limit must be at least 1, not {limit}")
    get_deployment(ctx.store, deployment)  # an unknown name is an error, not an empty list
    frame = list_feedback(ctx.store, deployment, limit)
    return [FeedbackEvent(**_plain(r)) for r in frame.to_dict("records")]


@operation("feedback:read")
def labelled_feedback(ctx: Context, deployment: str, after_id: int = 0) -> list[LabelledFeedback]:
    """Corrected labels (or answers) with the inputs they refer to, oldest first (what adapt learns from)."""
    from llmos.store.deployments import get_deployment
    from llmos.store.feedback import labelled_feedback as labelled

    get_deployment(ctx.store, deployment)
    frame = labelled(ctx.store, deployment, after_id)
    fixed = {"feedback_id", "request_id", "model", "label", "answer", "predicted", "created_at"}
    rows = []
    for record in frame.to_dict("records"):
        values = _plain(record)
        inputs = {k: v for k, v in values.items() if k not in fixed}
        rows.append(LabelledFeedback(**{k: v for k, v in values.items() if k in fixed}, inputs=inputs))
    return rows


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """pandas' cells as plain Python values (numpy scalars, NaN and NaT as None)."""
    import math
    from datetime import datetime

    out = {}
    for key, value in record.items():
        if isinstance(value, datetime):
            value = None if type(value).__name__ == "NaTType" else value.replace()
        elif hasattr(value, "item") and not isinstance(value, (str, bytes)):
            value = value.item()
        if value is not None and isinstance(value, float) and math.isnan(value):
            value = None
        out[str(key)] = value
    return out
