"""Knowledge collections: import files as a versioned collection, list and show versions,
search one (BM25, dense or hybrid), add and delete documents. Reading is `data:read`,
changing `data:write`, as for datasets."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from llmos.core.errors import LlmosError
from llmos.ops.context import Context
from llmos.ops.datasets import PiiColumn
from llmos.ops.registry import operation
from llmos.ops.results import Result, Timestamp

MAX_QUERY_CHARS = 2000  # a longer query is refused (413): a question, not a document
DEFAULT_CHUNK_SIZE = 150
DEFAULT_CHUNK_OVERLAP = 30


class DocumentInfo(Result):
    source: str = Field(description="The file (or archive member) it came from")
    kind: str = Field(description="faq, markdown, html, text or pdf")
    title: str
    chunks: int


class CollectionInfo(Result):
    """One collection version: its documents, chunking and indexes."""

    ref: str = Field(description="NAME@VERSION")
    name: str
    version: int
    documents: int = Field(description="Documents (files; a FAQ file counts once)")
    chunks: int
    encoder: str | None = Field(description="Encoder of the dense index; null: BM25 only")
    chunk_size: int = Field(description="Words per chunk, at most")
    chunk_overlap: int = Field(description="Words shared by consecutive chunks")
    size_bytes: int = Field(description="Size of its stored index (chunks, embeddings, BM25)")
    change: str = Field(description="What made this version: import, add or delete, with the files")
    parent_version: int | None = Field(None, description="The version it changed")
    actor: str
    created_at: Timestamp
    document_list: list[DocumentInfo]


class ImportedCollection(CollectionInfo):
    created: bool = Field(
        description="False when the same files and settings were already the latest version"
    )
    pii: list[PiiColumn] | None = Field(None, description="With pii=report or redact: what the screen found")


class SearchHit(Result):
    id: str = Field(description="SOURCE#POSITION: the chunk, for citations")
    source: str
    title: str
    kind: str
    position: int = Field(description="The chunk's place in its document (0, 1, ...)")
    text: str
    score: float = Field(description="The ranking score (fused for hybrid)")
    dense_score: float | None = Field(None, description="Cosine similarity to the query")
    bm25_score: float | None = None
    metadata: dict[str, Any] = Field(
        description="A FAQ row's question and answer (and other columns), a PDF's page"
    )


class SearchResult(Result):
    collection: str = Field(description="NAME@VERSION searched")
    query: str
    mode: str
    fusion: str | None
    k: int
    took_ms: float
    hits: list[SearchHit]


def collection_info(row: Any) -> CollectionInfo:
    return CollectionInfo(
        ref=row.ref,
        name=row.name,
        version=row.version,
        documents=row.num_documents,
        chunks=row.num_chunks,
        encoder=row.encoder,
        chunk_size=row.chunk_size,
        chunk_overlap=row.chunk_overlap,
        size_bytes=row.size_bytes,
        change=row.change,
        parent_version=row.parent_version,
        actor=row.actor,
        created_at=row.created_at,
        document_list=[DocumentInfo(**d) for d in row.documents],
    )


def _files(paths: list[str | os.PathLike[str]], sources: list[str] | None) -> list[Any]:
    from llmos.core.errors import UsageError
    from llmos.knowledge.collections import FileInput

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if sources is not None and len(sources) != len(paths):
        raise UsageError(f"sources: {len(sources)} names for {len(paths)} files")
    names = sources or [Path(p).name for p in paths]
    return [FileInput(Path(p), n) for p, n in zip(paths, names, strict=True)]


def _named(exc: LlmosError, files: list[Any]) -> LlmosError:
    """Error messages name the caller's files, not an upload's temporary copies."""
    for f in files:
        if f.source != f.path.name:
            exc.message = exc.message.replace(str(f.path), f.source)
            exc.args = (exc.message,)
    return exc


@operation("data:write")
def import_collection(
    ctx: Context,
    paths: list[str | os.PathLike[str]],
    name: str,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
    encoder: str = "minilm",
    question: str = "question",
    answer: str = "answer",
    pii: str = "off",
    sources: list[str] | None = None,
) -> ImportedCollection:
    """Import files (FAQ CSV/JSONL, Markdown, HTML, text, PDF, or a zip of them) as a new
    immutable version of collection `name`, chunked and indexed (BM25, and dense with
    `encoder`: a zoo alias, a folder or a Hugging Face id; `none` for BM25 only).

    `question`/`answer` name a FAQ table's columns; `pii` screens the chunks as a dataset
    import does (off, report, redact, reject); `sources` are the names the files go by
    (an upload's file names). The same files and settings give back the latest version."""
    from llmos.knowledge.collections import import_collection as store_import
    from llmos.knowledge.loaders import FaqColumns
    from llmos.security.pii import import_screen

    screen = import_screen(pii)
    files = _files(paths, sources)
    try:
        row, created = store_import(
            ctx.store,
            ctx.project,
            files,
            name,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            encoder=None if encoder in ("", "none") else encoder,
            faq=FaqColumns(question, answer),
            screen=screen,
        )
    except LlmosError as exc:
        raise _named(exc, files) from None
    found = None
    if screen is not None and pii in ("report", "redact") and screen.report is not None:
        found = [PiiColumn(column=c.column, rows=c.rows, counts=c.counts) for c in screen.report]
    return ImportedCollection(**collection_info(row).model_dump(), created=created, pii=found)


@operation("data:read")
def collections(ctx: Context, name: str | None = None) -> list[CollectionInfo]:
    """Every collection version (of collection `name`), oldest first."""
    from llmos.knowledge.collections import list_collections

    return [collection_info(row) for row in list_collections(ctx.store, ctx.project, name)]


@operation("data:read")
def collection(ctx: Context, ref: str) -> CollectionInfo:
    """One collection version (NAME: the latest) with its documents."""
    from llmos.knowledge.collections import get_collection

    return collection_info(get_collection(ctx.store, ctx.project, ref))


@operation("data:read")
def search_collection(
    ctx: Context,
    name: str,
    query: str,
    *,
    k: int = 10,
    mode: str = "hybrid",
    fusion: str = "rrf",
    weight: float = 0.5,
    filters: dict[str, Any] | None = None,
) -> SearchResult:
    """The `k` chunks of collection `name` (NAME@V: that version) that best answer `query`.

    `mode`: hybrid (default), dense or bm25; `fusion` of hybrid: rrf (reciprocal rank
    fusion) or weighted; `weight` is the dense share (0.5: equal); `filters`: {field: value or
    [values]} over source, title, kind and chunk metadata (a FAQ row's columns, page)."""
    from llmos.knowledge.collections import get_collection, search
    from llmos.serve.errors import InputTooLarge

    if len(query) > MAX_QUERY_CHARS:
        raise InputTooLarge(f"query: {len(query)} characters, over the limit of {MAX_QUERY_CHARS}")
    row = get_collection(ctx.store, ctx.project, name)
    start = time.perf_counter()
    found = search(ctx.store, row, query, k=k, mode=mode, fusion=fusion, weight=weight, filters=filters)
    took = (time.perf_counter() - start) * 1000
    hits = [
        SearchHit(
            id=f"{f.chunk.source}#{f.chunk.position}",
            source=f.chunk.source,
            title=f.chunk.title,
            kind=f.chunk.kind,
            position=f.chunk.position,
            text=f.chunk.text,
            score=round(f.hit.score, 6),
            dense_score=None if f.hit.dense is None else round(f.hit.dense, 6),
            bm25_score=None if f.hit.bm25 is None else round(f.hit.bm25, 6),
            metadata=f.chunk.metadata,
        )
        for f in found
    ]
    return SearchResult(
        collection=row.ref,
        query=query,
        mode=mode,
        fusion=fusion if mode == "hybrid" else None,
        k=k,
        took_ms=round(took, 3),
        hits=hits,
    )


@operation("data:write")
def add_documents(
    ctx: Context,
    name: str,
    paths: list[str | os.PathLike[str]],
    *,
    question: str = "question",
    answer: str = "answer",
    pii: str = "off",
    sources: list[str] | None = None,
) -> CollectionInfo:
    """The next version of collection `name` with these files added (a document of the
    same source replaced); only their chunks are embedded, the rest is reused."""
    from llmos.knowledge.collections import add_documents as store_add
    from llmos.knowledge.loaders import FaqColumns
    from llmos.security.pii import import_screen

    screen = import_screen(pii)
    files = _files(paths, sources)
    try:
        row = store_add(ctx.store, ctx.project, name, files, faq=FaqColumns(question, answer), screen=screen)
    except LlmosError as exc:
        raise _named(exc, files) from None
    return collection_info(row)


@operation("data:write")
def delete_documents(ctx: Context, name: str, sources: list[str]) -> CollectionInfo:
    """The next version of collection `name` without the documents of `sources`."""
    from llmos.knowledge.collections import delete_documents as store_delete

    return collection_info(store_delete(ctx.store, ctx.project, name, list(sources)))
