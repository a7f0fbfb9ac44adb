"""Feedback: list a deployment's feedback and the labelled rows adapt learns from, and
import a file of it (multipart, all rows or none). Submitting one event is the data
plane's `POST /v1/deployments/{name}/feedback` (`routers.deployments`)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile

from llmos.api.access import op
from llmos.api.dependencies import context
from llmos.core.errors import DataError, LlmosError
from llmos.ops import feedback as ops
from llmos.ops.context import Context
from llmos.ops.feedback import FeedbackEvent, FeedbackImport, LabelledFeedback

SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")


def router(allow: Any) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["feedback"], dependencies=[Depends(allow)])

    @api.get("/deployments/{name}/feedback", response_model=list[FeedbackEvent], openapi_extra=op("feedback"))
    def list_(
        name: str,
        limit: int | None = Query(None, ge=1, description="The newest N"),
        ctx: Context = Depends(context),
    ) -> list[FeedbackEvent]:
        return ops.feedback(ctx, name, limit)

    @api.get(
        "/deployments/{name}/feedback/labelled",
        response_model=list[LabelledFeedback],
        openapi_extra=op("labelled_feedback"),
    )
    def labelled(
        name: str,
        after_id: int = Query(0, ge=0, description="Only feedback after this id"),
        ctx: Context = Depends(context),
    ) -> list[LabelledFeedback]:
        return ops.labelled_feedback(ctx, name, after_id)

    @api.post("/feedback/import", response_model=FeedbackImport, openapi_extra=op("import_feedback"))
    def import_(
        file: UploadFile = File(description="CSV, TSV, JSONL or Parquet; its name's suffix tells which"),
        deployment: str = Form(description="The deployment the feedback is for"),
        new_labels: bool = Form(False, description="Accept labels the model does not know yet"),
        ctx: Context = Depends(context),
    ) -> FeedbackImport:
        """Every row is checked first, then all are stored or none."""
        name = Path(file.filename or "").name
        if not name or Path(name).suffix.lower() not in SUFFIXES:
            raise DataError(f"file {name or '(unnamed)'!r}: feedback files are CSV, TSV, JSONL or Parquet")
        with tempfile.TemporaryDirectory(prefix="llmos-feedback-") as folder:
            target = Path(folder) / name
            with target.open("wb") as out:
                shutil.copyfileobj(file.file, out, 1 << 20)
            try:
                return ops.import_feedback(ctx, target, deployment, new_labels=new_labels)
            except LlmosError as exc:  # name the uploaded file, not where the server kept it
                exc.message = exc.message.replace(str(target), name)
                exc.args = (exc.message,)
                raise

    return api
