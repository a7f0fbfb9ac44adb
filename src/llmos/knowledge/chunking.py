"""Chunking: a document into passages of about `size` words that overlap by `overlap`.

Passages follow the text's own boundaries where they can: paragraphs, then sentences,
are packed until the next would pass `size` words; the next passage starts with the
last sentences of the one before, up to `overlap` words. A sentence longer than `size`
is cut by words. A FAQ entry stays one chunk whatever its length. Each chunk keeps its
document's source, title and metadata and its position (0, 1, ...) in the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from llmos.core.errors import UsageError
from llmos.knowledge.loaders import Document

DEFAULT_SIZE = 150  # words per chunk (about 200 MiniLM tokens)
DEFAULT_OVERLAP = 30
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


@dataclass
class Chunk:
    source: str
    title: str
    kind: str
    position: int
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def check_sizes(size: int, overlap: int) -> None:
    if not 10 <= size <= 5000:
        raise UsageError(f"chunk size must be between 10 and 5000 words, not {size}")
    if not 0 <= overlap < size:
        raise UsageError(f"chunk overlap must be at least 0 and below the chunk size ({size}), not {overlap}")


def _sentences(text: str) -> list[str]:
    out = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        if paragraph:
            out += [s for s in _SENTENCE.split(paragraph) if s]
    return out


def split_text(text: str, size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP) -> list[str]:
    pieces: list[list[str]] = []
    for sentence in _sentences(text):
        words = sentence.split()
        while len(words) > size:  # a sentence over the size: cut it by words
            pieces.append(words[:size])
            words = words[size - overlap :]
        pieces.append(words)
    chunks: list[str] = []
    current: list[list[str]] = []
    count = 0
    for piece in pieces:
        if current and count + len(piece) > size:
            chunks.append(" ".join(w for p in current for w in p))
            carry: list[list[str]] = []
            kept = 0
            for prev in reversed(current):
                if kept + len(prev) > overlap:
                    break
                carry.insert(0, prev)
                kept += len(prev)
            current, count = carry, kept
        current.append(piece)
        count += len(piece)
    if current:
        text_ = " ".join(w for p in current for w in p)
        if not chunks or text_ not in chunks[-1]:
            chunks.append(text_)
    return chunks


def chunk_documents(
    documents: list[Document], size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP
) -> list[Chunk]:
    check_sizes(size, overlap)
    chunks: list[Chunk] = []
    positions: dict[str, int] = {}
    for doc in documents:
        texts = [" ".join(doc.text.split())] if doc.whole else split_text(doc.text, size, overlap)
        for text in texts:
            if not text:
                continue
            position = positions.get(doc.source, 0)
            positions[doc.source] = position + 1
            chunks.append(Chunk(doc.source, doc.title, doc.kind, position, text, dict(doc.metadata)))
    return chunks
