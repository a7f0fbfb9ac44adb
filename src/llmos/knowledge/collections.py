"""Collections: import files as an immutable, versioned collection; add and delete
documents (each change the next version); load a version's index (kept in memory, a
few at a time, like models in the server); search it.

Everything is read, chunked, screened, embedded and indexed before anything is written;
the blobs go to the artifact store (encrypted there when the workspace is), then the row
in one transaction, so a failure leaves no version behind.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

from llmos.core.errors import DataError, NotFoundError, UsageError
from llmos.core.util import check_name, parse_ref, sha256_file
from llmos.knowledge.chunking import DEFAULT_OVERLAP, DEFAULT_SIZE, Chunk, check_sizes, chunk_documents
from llmos.knowledge.encoders import encoder_for
from llmos.knowledge.index import Hit, KnowledgeIndex
from llmos.knowledge.loaders import Document, FaqColumns, load_file
from llmos.store.audit import current_actor, record
from llmos.store.datasets import ImportScreen
from llmos.store.db import Store
from llmos.store.schema import KnowledgeVersion

DEFAULT_ENCODER = "minilm"
CACHED_INDEXES = 4  # loaded indexes kept in memory per process (least recently used go)


@dataclass
class FileInput:
    path: Path
    source: str  # the name it goes by (an upload's file name)


def _inputs(paths: Sequence[str | Path | FileInput]) -> list[FileInput]:
    out = [p if isinstance(p, FileInput) else FileInput(Path(p), Path(p).name) for p in paths]
    if not out:
        raise UsageError("name at least one file to import")
    seen: set[str] = set()
    for item in out:
        if item.source in seen:
            raise UsageError(f"{item.source}: named twice (sources in a collection are unique by file name)")
        seen.add(item.source)
    return out


def _load(inputs: list[FileInput], faq: FaqColumns) -> list[Document]:
    documents: list[Document] = []
    for item in inputs:
        documents += load_file(item.path, item.source, faq)
    return documents


def _screen(chunks: list[Chunk], screen: ImportScreen | None) -> list[Chunk]:
    """Pass the chunks' texts (and a FAQ row's answer and question) through the PII screen."""
    if screen is None or not chunks:
        return chunks
    import pandas as pd

    frame = pd.DataFrame({"text": [c.text for c in chunks], "title": [c.title for c in chunks]})
    for key in ("question", "answer"):
        frame[key] = [str(c.metadata.get(key, "")) for c in chunks]
    out = screen.apply(frame, Path(chunks[0].source))
    screened = []
    for chunk, row in zip(chunks, out.to_dict(orient="records"), strict=True):
        meta = dict(chunk.metadata)
        for key in ("question", "answer"):
            if key in meta:
                meta[key] = row[key]
        screened.append(Chunk(chunk.source, row["title"], chunk.kind, chunk.position, row["text"], meta))
    return screened


def _documents_summary(index: KnowledgeIndex) -> list[dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for chunk in index.chunks:
        title = Path(chunk.source).name if chunk.kind == "faq" else chunk.title  # a FAQ: one title per row
        entry = docs.setdefault(
            chunk.source, {"source": chunk.source, "kind": chunk.kind, "title": title, "chunks": 0}
        )
        entry["chunks"] += 1
    return list(docs.values())


def find_collection(store: Store, project: str, ref: str) -> KnowledgeVersion | None:
    name, version = parse_ref(ref, "collection")
    with store.read() as session:
        query = select(KnowledgeVersion).where(
            KnowledgeVersion.project == project, KnowledgeVersion.name == name
        )
        if version is None:
            query = query.order_by(KnowledgeVersion.version.desc())
        else:
            query = query.where(KnowledgeVersion.version == version)
        return session.scalars(query).first()


def list_collections(store: Store, project: str, name: str | None = None) -> list[KnowledgeVersion]:
    with store.read() as session:
        query = (
            select(KnowledgeVersion)
            .where(KnowledgeVersion.project == project)
            .order_by(KnowledgeVersion.name, KnowledgeVersion.version)
        )
        if name:
            query = query.where(KnowledgeVersion.name == name)
        return list(session.scalars(query))


def get_collection(store: Store, project: str, ref: str) -> KnowledgeVersion:
    row = find_collection(store, project, ref)
    if row is None:
        names = ", ".join(sorted({r.name for r in list_collections(store, project)})) or "none yet"
        raise NotFoundError(
            f"collection {ref!r} not found (collections: {names}); import it with `llmos kb import`"
        )
    return row


def _save(
    store: Store,
    project: str,
    name: str,
    index: KnowledgeIndex,
    *,
    content_hash: str,
    encoder: str | None,
    size: int,
    overlap: int,
    change: str,
    parent: int | None,
) -> KnowledgeVersion:
    if not len(index):
        raise DataError(f"collection {name!r} would hold no chunks: the files hold no text")
    blobs = index.to_blobs()
    artifacts = {blob: store.artifacts.put_bytes(data) for blob, data in blobs.items()}
    documents = _documents_summary(index)
    with store.transaction() as session:
        latest = session.scalar(
            select(func.max(KnowledgeVersion.version)).where(
                KnowledgeVersion.project == project, KnowledgeVersion.name == name
            )
        )
        if parent is not None and latest != parent:
            raise UsageError(f"collection {name!r} changed meanwhile (now at version {latest}); try again")
        row = KnowledgeVersion(
            project=project,
            name=name,
            version=(latest or 0) + 1,
            content_hash=content_hash,
            encoder=encoder,
            chunk_size=size,
            chunk_overlap=overlap,
            num_documents=len(documents),
            num_chunks=len(index),
            documents=documents,
            artifacts=artifacts,
            size_bytes=sum(len(b) for b in blobs.values()),
            change=change[:256],
            parent_version=parent,
            actor=current_actor(),
        )
        session.add(row)
        session.flush()
    _remember(store, row, index)
    record(
        store,
        f"knowledge.{change.split(' ')[0]}",
        row.ref,
        detail={"chunks": row.num_chunks, "documents": row.num_documents},
    )
    return row


def import_collection(
    store: Store,
    project: str,
    paths: Sequence[str | Path | FileInput],
    name: str,
    *,
    chunk_size: int = DEFAULT_SIZE,
    chunk_overlap: int = DEFAULT_OVERLAP,
    encoder: str | None = DEFAULT_ENCODER,
    faq: FaqColumns = FaqColumns(),
    screen: ImportScreen | None = None,
) -> tuple[KnowledgeVersion, bool]:
    """Import files as a new version of collection `name` (all its documents replaced);
    the same files with the same settings give back the existing version (created False)."""
    check_name(name, "collection name")
    check_sizes(chunk_size, chunk_overlap)
    inputs = _inputs(paths)
    documents = _load(inputs, faq)
    settings = (
        f"{chunk_size}:{chunk_overlap}:{encoder}:{faq.question}:{faq.answer}:{screen.name if screen else ''}"
    )
    digest = hashlib.sha256(settings.encode())
    for item in sorted(inputs, key=lambda i: i.source):
        digest.update(f"{item.source}:{sha256_file(item.path)}".encode())
    content_hash = digest.hexdigest()
    latest = find_collection(store, project, name)
    if latest is not None and latest.content_hash == content_hash:
        return latest, False
    chunks = _screen(chunk_documents(documents, chunk_size, chunk_overlap), screen)
    if not chunks:
        raise DataError(f"collection {name!r} would hold no chunks: the files hold no text")
    encode = encoder_for(encoder, store.settings.artifacts_dir) if encoder else None
    index = KnowledgeIndex.build(chunks, encode)
    sources = ", ".join(i.source for i in inputs)
    row = _save(
        store,
        project,
        name,
        index,
        content_hash=content_hash,
        encoder=encoder,
        size=chunk_size,
        overlap=chunk_overlap,
        change=f"import {sources}",
        parent=latest.version if latest else None,
    )
    return row, True


def add_documents(
    store: Store,
    project: str,
    name: str,
    paths: Sequence[str | Path | FileInput],
    *,
    faq: FaqColumns = FaqColumns(),
    screen: ImportScreen | None = None,
) -> KnowledgeVersion:
    """The next version of `name` with these files added (a source already there is
    replaced); only their chunks are embedded."""
    base = get_collection(store, project, name)
    inputs = _inputs(paths)
    documents = _load(inputs, faq)
    chunks = _screen(chunk_documents(documents, base.chunk_size, base.chunk_overlap), screen)
    if not chunks:
        raise DataError(f"{', '.join(i.source for i in inputs)}: no text to add")
    index = load_index(store, base)
    encode = encoder_for(base.encoder, store.settings.artifacts_dir) if base.encoder else None
    new = index.added(chunks, encode, replace={i.source for i in inputs})
    digest = hashlib.sha256(base.content_hash.encode())
    for item in inputs:
        digest.update(f"+{item.source}:{sha256_file(item.path)}".encode())
    return _save(
        store,
        project,
        base.name,
        new,
        content_hash=digest.hexdigest(),
        encoder=base.encoder,
        size=base.chunk_size,
        overlap=base.chunk_overlap,
        change=f"add {', '.join(i.source for i in inputs)}",
        parent=base.version,
    )


def delete_documents(store: Store, project: str, name: str, sources: Sequence[str]) -> KnowledgeVersion:
    """The next version of `name` without the documents of `sources`."""
    base = get_collection(store, project, name)
    if not sources:
        raise UsageError("name at least one document (its source) to delete")
    known = {d["source"] for d in base.documents}
    missing = [s for s in sources if s not in known]
    if missing:
        raise NotFoundError(
            f"collection {base.ref} has no document {missing[0]!r} (documents: {', '.join(sorted(known))})"
        )
    if set(sources) >= known:
        raise UsageError(f"deleting {', '.join(sources)} would leave collection {base.ref} empty")
    index = load_index(store, base).without(set(sources))
    digest = hashlib.sha256(base.content_hash.encode())
    for source in sorted(sources):
        digest.update(f"-{source}".encode())
    return _save(
        store,
        project,
        base.name,
        index,
        content_hash=digest.hexdigest(),
        encoder=base.encoder,
        size=base.chunk_size,
        overlap=base.chunk_overlap,
        change=f"delete {', '.join(sources)}",
        parent=base.version,
    )


# loaded indexes: a small LRU per process, keyed by the store and the version's blobs

_CACHE: OrderedDict[tuple[str, str], KnowledgeIndex] = OrderedDict()
_LOCK = threading.Lock()


def _key(store: Store, row: KnowledgeVersion) -> tuple[str, str]:
    return (
        store.artifacts.describe(),
        row.artifacts["chunks.parquet"] + row.artifacts.get("embeddings.npy", ""),
    )


def _remember(store: Store, row: KnowledgeVersion, index: KnowledgeIndex) -> None:
    with _LOCK:
        _CACHE[_key(store, row)] = index
        _CACHE.move_to_end(_key(store, row))
        while len(_CACHE) > CACHED_INDEXES:
            _CACHE.popitem(last=False)


def load_index(store: Store, row: KnowledgeVersion) -> KnowledgeIndex:
    key = _key(store, row)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    blobs = {
        blob: store.artifacts.read_bytes(digest, f"collection {row.ref} {blob}")
        for blob, digest in row.artifacts.items()
    }
    index = KnowledgeIndex.from_blobs(blobs)
    _remember(store, row, index)
    return index


@dataclass
class Found:
    chunk: Chunk
    hit: Hit


def search(
    store: Store,
    row: KnowledgeVersion,
    query: str,
    *,
    k: int = 10,
    mode: str = "hybrid",
    fusion: str = "rrf",
    weight: float = 0.5,
    filters: dict[str, Any] | None = None,
) -> list[Found]:
    """The best `k` chunks of collection version `row` for `query`."""
    if not query.strip():
        raise UsageError("query: empty; ask something")
    if not 1 <= k <= 1000:
        raise UsageError(f"k must be between 1 and 1000, not {k}")
    if mode != "bm25" and row.encoder is None:
        raise UsageError(
            f"collection {row.ref} has no dense index (imported without an encoder): use mode bm25"
        )
    index = load_index(store, row)
    vector: np.ndarray | None = None
    if mode != "bm25":
        assert row.encoder is not None
        vector = encoder_for(row.encoder, store.settings.artifacts_dir)([query])[0]
    hits = index.search(query, vector, k=k, mode=mode, fusion=fusion, weight=weight, filters=filters)
    return [Found(index.chunks[h.row], h) for h in hits]
