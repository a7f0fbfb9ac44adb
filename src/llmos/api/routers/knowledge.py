"""`/v1/knowledge`: upload files as a collection version (multipart; several files travel
as one zip), list and show versions, search one, add and delete documents."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from llmos.api.access import op
from llmos.api.dependencies import context
from llmos.api.uploads import named_upload
from llmos.core.errors import UsageError
from llmos.ops import knowledge as ops
from llmos.ops.context import Context
from llmos.ops.knowledge import CollectionInfo, ImportedCollection, SearchResult

PREFIX = "/v1/knowledge"
DOCUMENTS = f"{PREFIX}/documents"
UPLOAD_PATHS = (PREFIX, DOCUMENTS)  # over MeasureAndLimit's body limit: the routes stream their own

_FILE = {
    "type": "string",
    "format": "binary",
    "description": "FAQ CSV/JSONL, Markdown, HTML, text or PDF file, or a zip of several (by extension)",
}
_FAQ = {
    "question": {"type": "string", "default": "question", "description": "FAQ question column"},
    "answer": {"type": "string", "default": "answer", "description": "FAQ answer column"},
    "pii": {"type": "string", "enum": ["off", "report", "redact", "reject"], "default": "off"},
}


def _body(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["file", "name"], "properties": properties}
            }
        },
    }


IMPORT_BODY = _body(
    {
        "file": _FILE,
        "name": {"type": "string", "description": "Collection name"},
        "chunk_size": {
            "type": "integer",
            "default": ops.DEFAULT_CHUNK_SIZE,
            "description": "Words per chunk",
        },
        "chunk_overlap": {"type": "integer", "default": ops.DEFAULT_CHUNK_OVERLAP},
        "encoder": {"type": "string", "default": "minilm", "description": "Dense encoder; none: BM25 only"},
        **_FAQ,
    }
)
ADD_BODY = _body({"file": _FILE, "name": {"type": "string", "description": "Collection name"}, **_FAQ})


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(description=f"The question (at most {ops.MAX_QUERY_CHARS} characters)")
    k: int = Field(10, description="How many chunks")
    mode: str = Field("hybrid", description="hybrid, dense or bm25")
    fusion: str = Field("rrf", description="Hybrid fusion: rrf or weighted")
    weight: float = Field(0.5, description="Weighted fusion: the dense share")
    filters: dict[str, Any] | None = Field(None, description="{field: value or [values]}")


def _int(fields: dict[str, str], name: str, default: int) -> int:
    value = fields.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{name}: {value!r} is not a whole number") from None


def router(allow: Any) -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["knowledge"], dependencies=[Depends(allow)])

    @api.post(
        "",
        response_model=ImportedCollection,
        openapi_extra={**op("import_collection"), "requestBody": IMPORT_BODY},
    )
    async def import_(request: Request, ctx: Context = Depends(context)) -> ImportedCollection:
        """Import an uploaded file as a new collection version; nothing is stored when it fails."""
        async with named_upload(request, ctx, "collection") as (upload, name):
            fields = upload.fields
            return await asyncio.to_thread(
                ops.import_collection,
                ctx,
                [upload.file],
                name,
                chunk_size=_int(fields, "chunk_size", ops.DEFAULT_CHUNK_SIZE),
                chunk_overlap=_int(fields, "chunk_overlap", ops.DEFAULT_CHUNK_OVERLAP),
                encoder=fields.get("encoder") or "minilm",
                question=fields.get("question") or "question",
                answer=fields.get("answer") or "answer",
                pii=fields.get("pii") or "off",
                sources=[upload.filename],
            )

    @api.post(
        "/documents",
        response_model=CollectionInfo,
        openapi_extra={**op("add_documents"), "requestBody": ADD_BODY},
    )
    async def add(request: Request, ctx: Context = Depends(context)) -> CollectionInfo:
        """Add an uploaded file (or a zip of several) to a collection: its next version."""
        async with named_upload(request, ctx, "collection") as (upload, name):
            fields = upload.fields
            return await asyncio.to_thread(
                ops.add_documents,
                ctx,
                name,
                [upload.file],
                question=fields.get("question") or "question",
                answer=fields.get("answer") or "answer",
                pii=fields.get("pii") or "off",
                sources=[upload.filename],
            )

    @api.get("", response_model=list[CollectionInfo], openapi_extra=op("collections"))
    def list_(name: str | None = None, ctx: Context = Depends(context)) -> list[CollectionInfo]:
        return ops.collections(ctx, name)

    @api.get("/{ref}", response_model=CollectionInfo, openapi_extra=op("collection"))
    def show(ref: str, ctx: Context = Depends(context)) -> CollectionInfo:
        return ops.collection(ctx, ref)

    @api.post("/{ref}/search", response_model=SearchResult, openapi_extra=op("search_collection"))
    def search(ref: str, body: SearchBody, ctx: Context = Depends(context)) -> SearchResult:
        """The k chunks of a collection that best answer the query (hybrid by default)."""
        return ops.search_collection(
            ctx,
            ref,
            body.query,
            k=body.k,
            mode=body.mode,
            fusion=body.fusion,
            weight=body.weight,
            filters=body.filters,
        )

    @api.delete("/{name}/documents", response_model=CollectionInfo, openapi_extra=op("delete_documents"))
    def delete(
        name: str,
        source: list[str] = Query(..., description="Source of a document to delete (repeat for several)"),
        ctx: Context = Depends(context),
    ) -> CollectionInfo:
        """The next version of a collection without these documents."""
        return ops.delete_documents(ctx, name, source)

    return api
