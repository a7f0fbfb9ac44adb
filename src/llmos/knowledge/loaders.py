"""Loaders: files into documents (source, title, kind, text, metadata).

FAQ tables (CSV or JSONL, `question` and `answer` columns by default, names configurable)
give one document per row, kept whole: its text is the question and the answer, its
metadata keeps both, so an assistant can return the stored answer verbatim. Markdown,
HTML and plain text give one document per file (the title: the first heading, the HTML
`<title>` or the file name); a PDF gives one document per page with text (pypdf), so
a chunk can cite its page. A `.zip` archive is read member by member, each by its
extension (how several files travel in one HTTP upload).

Every loader reads and checks its file completely and raises a one-line `DataError`
naming the file (an unsupported type, a PDF without any text, a table without the
question column, a file that is not UTF-8 text), before anything is stored.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from llmos.core.errors import DataError, NotFoundError, first_line

KINDS = {
    ".csv": "faq",
    ".jsonl": "faq",
    ".ndjson": "faq",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
    ".text": "text",
    ".pdf": "pdf",
    ".zip": "zip",
}
MAX_ARCHIVE_BYTES = 512 * 2**20  # uncompressed size of a zip's members, at most


@dataclass
class Document:
    """One loaded document: `source` is the file it came from (its name, or the member
    path inside an archive), `kind` faq / markdown / html / text / pdf."""

    source: str
    title: str
    kind: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    whole: bool = False  # a FAQ entry: one chunk, never split


@dataclass(frozen=True)
class FaqColumns:
    question: str = "question"
    answer: str = "answer"


def supported() -> str:
    return ", ".join(sorted(KINDS))


def load_file(path: Path, source: str | None = None, faq: FaqColumns = FaqColumns()) -> list[Document]:
    """The documents of one file; `source` is the name it goes by (default: its name)."""
    if not path.exists():
        raise NotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; name the files in it")
    name = source or path.name
    return load_bytes(path.read_bytes(), name, faq)


def load_bytes(data: bytes, source: str, faq: FaqColumns = FaqColumns()) -> list[Document]:
    suffix = Path(source).suffix.lower()
    kind = KINDS.get(suffix)
    if kind is None:
        raise DataError(
            f"{source}: unsupported file type {suffix or '(no extension)'!r}; use one of {supported()}"
        )
    if not data.strip():
        raise DataError(f"{source}: the file is empty")
    if kind == "zip":
        return _load_zip(data, source, faq)
    if kind == "pdf":
        return _load_pdf(data, source)
    text = _decode(data, source)
    if kind == "faq":
        return _load_faq(text, source, suffix, faq)
    if kind == "markdown":
        return [Document(source, _markdown_title(text) or Path(source).stem, kind, text)]
    if kind == "html":
        title, body = html_text(text)
        if not body.strip():
            raise DataError(f"{source}: the HTML page has no text")
        return [Document(source, title or Path(source).stem, kind, body)]
    return [Document(source, Path(source).stem, kind, text)]


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{source}: not UTF-8 text (invalid byte at offset {exc.start}); re-save it as UTF-8"
        ) from None


def _load_faq(text: str, source: str, suffix: str, faq: FaqColumns) -> list[Document]:
    import pandas as pd

    try:
        if suffix == ".csv":
            frame = pd.read_csv(io.StringIO(text), keep_default_na=False, dtype=str)
        else:
            frame = pd.read_json(io.StringIO(text), lines=True, dtype=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{source}: cannot parse as {suffix[1:]}: {first_line(exc)}") from None
    frame.columns = [str(c) for c in frame.columns]
    for column in (faq.question, faq.answer):
        if column not in frame.columns:
            raise DataError(
                f"{source}: no {column!r} column (columns: {', '.join(frame.columns)}); "
                "name the FAQ columns with --question/--answer"
            )
    docs = []
    extra = [c for c in frame.columns if c not in (faq.question, faq.answer)]
    for i, row in enumerate(frame.to_dict(orient="records")):
        question = _cell(row[faq.question])
        answer = _cell(row[faq.answer])
        if not question or not answer:
            raise DataError(
                f"{source}: row {i + 1} has an empty {faq.question if not question else faq.answer!r}"
            )
        meta: dict[str, Any] = {"question": question, "answer": answer, "row": i + 1}
        for c in extra:
            value = _cell(row[c])
            if value:
                meta[c] = value
        docs.append(Document(source, question, "faq", f"{question}\n{answer}", meta, whole=True))
    if not docs:
        raise DataError(f"{source}: the FAQ table has a header but no rows")
    return docs


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return (
        value.strip()
        if isinstance(value, str)
        else json.dumps(value)
        if isinstance(value, (dict, list))
        else str(value)
    )


def _markdown_title(text: str) -> str | None:
    for line in text.splitlines():
        match = re.match(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", line)
        if match:
            return match.group(1).strip()
    return None


class _HtmlText(HTMLParser):
    SKIP = frozenset({"script", "style", "noscript", "template", "head"})
    BLOCK = frozenset(
        [
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "section",
            "article",
            "pre",
            "table",
            "blockquote",
        ]
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self.skipping = 0
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "title":
            self.in_title = True
        elif tag in self.SKIP:
            self.skipping += 1
        if tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag in self.SKIP and self.skipping:
            self.skipping -= 1
        if tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.skipping:
            self.parts.append(data)


def html_text(text: str) -> tuple[str, str]:
    """(title, visible text) of an HTML page, paragraphs kept apart by blank lines."""
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    body = "".join(parser.parts)
    body = re.sub(r"[ \t\r\f\v]+", " ", body)
    body = re.sub(r"\n\s*\n\s*", "\n\n", body).strip()
    return " ".join("".join(parser.title).split()), body


def _load_pdf(data: bytes, source: str) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or Path(source).stem
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{source}: cannot read as PDF: {first_line(exc)}") from None
    docs = [
        Document(source, str(title), "pdf", text, {"page": i + 1})
        for i, text in enumerate(pages)
        if text.strip()
    ]
    if not docs:
        raise DataError(
            f"{source}: the PDF has no extractable text ({len(pages)} pages, scanned images?); "
            "run OCR on it first"
        )
    return docs


def _load_zip(data: bytes, source: str, faq: FaqColumns) -> list[Document]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise DataError(f"{source}: not a zip archive: {first_line(exc)}") from None
    members = [m for m in archive.infolist() if not m.is_dir() and not Path(m.filename).name.startswith(".")]
    if sum(m.file_size for m in members) > MAX_ARCHIVE_BYTES:
        raise DataError(f"{source}: the archive holds over {MAX_ARCHIVE_BYTES // 2**20} MiB uncompressed")
    if not members:
        raise DataError(f"{source}: the archive holds no files")
    docs: list[Document] = []
    for member in members:
        if Path(member.filename).suffix.lower() == ".zip":
            raise DataError(f"{source}: {member.filename}: archives inside archives are not read")
        docs += load_bytes(archive.read(member), member.filename, faq)
    return docs
