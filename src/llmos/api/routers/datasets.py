"""`/v1/datasets`: upload a file as a dataset version (multipart, streamed to disk under a
size limit), list versions, show one with its statistics, read its first rows."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from llmos.api.access import op
from llmos.api.dependencies import context
from llmos.api.uploads import named_upload
from llmos.ops import datasets as ops
from llmos.ops.context import Context
from llmos.ops.datasets import MAX_ROWS, DatasetInfo, DatasetRows, ImportInfo

PREFIX = "/v1/datasets"
UPLOAD_PATHS = (PREFIX,)  # over MeasureAndLimit's body limit: the route enforces its own, streaming

UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "name"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "CSV, TSV, JSONL, Parquet or CoNLL file (the extension tells which)",
                    },
                    "name": {"type": "string", "description": "Dataset name"},
                    "label": {"type": "string", "description": "Label column (default: label/category/...)"},
                    "format": {"type": "string", "enum": ["csv", "tsv", "jsonl", "parquet", "conll"]},
                    "pii": {
                        "type": "string",
                        "enum": ["off", "report", "redact", "reject"],
                        "default": "off",
                        "description": "Scan text columns for PII: report counts, redact, or reject the file",
                    },
                },
            }
        }
    },
}


def router(allow: Any) -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["datasets"], dependencies=[Depends(allow)])

    @api.post(
        "",
        response_model=ImportInfo,
        openapi_extra={**op("import_dataset"), "requestBody": UPLOAD_BODY},
    )
    async def import_(request: Request, ctx: Context = Depends(context)) -> ImportInfo:
        """Import an uploaded file as a dataset version; nothing is stored when it fails."""
        async with named_upload(request, ctx, "dataset") as (upload, name):
            return await asyncio.to_thread(
                ops.import_dataset,
                ctx,
                upload.file,
                name,
                label=upload.fields.get("label") or None,
                format=upload.fields.get("format") or None,
                pii=upload.fields.get("pii") or "off",
                source=upload.filename,
            )

    @api.get("", response_model=list[DatasetInfo], openapi_extra=op("datasets"))
    def list_(name: str | None = None, ctx: Context = Depends(context)) -> list[DatasetInfo]:
        return ops.datasets(ctx, name)

    @api.get("/{ref}", response_model=DatasetInfo, openapi_extra=op("dataset"))
    def show(ref: str, ctx: Context = Depends(context)) -> DatasetInfo:
        return ops.dataset(ctx, ref)

    @api.get("/{ref}/rows", response_model=DatasetRows, openapi_extra=op("dataset_rows"))
    def rows(
        ref: str, limit: int = Query(10, ge=0, le=MAX_ROWS), ctx: Context = Depends(context)
    ) -> DatasetRows:
        return ops.dataset_rows(ctx, ref, limit)

    return api
