"""`llmos kb import|add|delete|list|show|search`: knowledge collections."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from llmos.cli.output import out, print_json, table
from llmos.cli.state import STATE
from llmos.core.errors import UsageError

app = typer.Typer(help="Knowledge collections: import documents, search them.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
QuestionOpt = Annotated[str, typer.Option("--question", help="FAQ tables: the question column.")]
AnswerOpt = Annotated[str, typer.Option("--answer", help="FAQ tables: the answer column.")]
PiiOpt = Annotated[
    str,
    typer.Option("--pii", help="Screen the chunks for PII: off, report, redact or reject (as data import)."),
]


def _summary(verb: str, r: Any) -> None:
    out.print(
        f"{verb} {r.ref}: {r.documents} documents, {r.chunks} chunks, "
        + (f"dense {escape(r.encoder)} + BM25" if r.encoder else "BM25 only")
        + (f" ({escape(r.change)})" if verb != "unchanged, already" else "")
    )


@app.command("import")
def import_(
    files: Annotated[
        list[Path], typer.Argument(help="FAQ CSV/JSONL, Markdown, HTML, text, PDF or zip files.")
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Collection name.")],
    chunk_size: Annotated[int, typer.Option("--chunk-size", help="Words per chunk, at most.")] = 150,
    chunk_overlap: Annotated[
        int, typer.Option("--chunk-overlap", help="Words consecutive chunks share.")
    ] = 30,
    encoder: Annotated[
        str,
        typer.Option(
            "--encoder", help="Dense encoder: zoo alias, folder or Hugging Face id; none: BM25 only."
        ),
    ] = "minilm",
    question: QuestionOpt = "question",
    answer: AnswerOpt = "answer",
    pii: PiiOpt = "off",
    json_out: JsonOpt = False,
) -> None:
    """Import files as a new immutable collection version, chunked and indexed; with --url,
    they are uploaded to the server."""
    result = STATE.backend.import_collection(
        files,
        name,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        encoder=encoder,
        question=question,
        answer=answer,
        pii=pii,
    )
    if json_out:
        print_json(result.as_json())
        return
    if result.pii:
        table(
            f"PII found ({'redacted' if pii == 'redact' else 'stored as is'})",
            ["field", "chunks", "found"],
            [
                (c.column, c.rows, ", ".join(f"{k} {v}" for k, v in c.counts.items()) or "-")
                for c in result.pii
            ],
        )
    _summary("imported" if result.created else "unchanged, already", result)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    files: Annotated[list[Path], typer.Argument(help="Files to add (a source already there is replaced).")],
    question: QuestionOpt = "question",
    answer: AnswerOpt = "answer",
    pii: PiiOpt = "off",
    json_out: JsonOpt = False,
) -> None:
    """Add documents: the collection's next version (only the new chunks are embedded)."""
    result = STATE.backend.add_documents(name, files, question=question, answer=answer, pii=pii)
    if json_out:
        print_json(result.as_json())
        return
    _summary("made", result)


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    sources: Annotated[list[str], typer.Argument(help="Sources (file names) of the documents to delete.")],
    json_out: JsonOpt = False,
) -> None:
    """Delete documents: the collection's next version without them."""
    result = STATE.backend.delete_documents(name, sources)
    if json_out:
        print_json(result.as_json())
        return
    _summary("made", result)


@app.command("list")
def list_(
    name: Annotated[str | None, typer.Argument(help="Only versions of this collection.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List collection versions."""
    rows = STATE.backend.collections(name)
    if json_out:
        print_json([r.as_json() for r in rows])
        return
    table(
        None,
        ["collection", "documents", "chunks", "encoder", "change", "created"],
        [(r.ref, r.documents, r.chunks, r.encoder or "-", r.change, r.as_json()["created_at"]) for r in rows],
    )


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")], json_out: JsonOpt = False
) -> None:
    """A collection version: its documents, chunking and indexes."""
    r = STATE.backend.collection(ref)
    if json_out:
        print_json(r.as_json())
        return
    out.print(
        f"[bold]{r.ref}[/bold]  {r.documents} documents  {r.chunks} chunks  "
        f"encoder {escape(r.encoder or 'none (BM25 only)')}  chunks of {r.chunk_size} words, "
        f"overlap {r.chunk_overlap}  {r.size_bytes} bytes"
    )
    table(
        "documents",
        ["source", "kind", "title", "chunks"],
        [(d.source, d.kind, d.title, d.chunks) for d in r.document_list],
    )


def _filters(values: list[str]) -> dict[str, Any] | None:
    found: dict[str, Any] = {}
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key:
            raise UsageError(f"--filter {value!r}: write FIELD=VALUE (e.g. source=faq.csv)")
        found.setdefault(key, []).append(wanted)
    return found or None


@app.command("search")
def search(
    name: Annotated[str, typer.Argument(help="Collection NAME or NAME@VERSION.")],
    query: Annotated[str, typer.Argument(help="The question.")],
    k: Annotated[int, typer.Option("-k", "--k", help="How many chunks.")] = 5,
    mode: Annotated[str, typer.Option("--mode", help="hybrid, dense or bm25.")] = "hybrid",
    fusion: Annotated[str, typer.Option("--fusion", help="Hybrid fusion: rrf or weighted.")] = "rrf",
    weight: Annotated[float, typer.Option("--weight", help="Weighted fusion: the dense share.")] = 0.5,
    filters: Annotated[
        list[str] | None,
        typer.Option("--filter", help="FIELD=VALUE over source, title, kind or metadata (repeat)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """The chunks of a collection that best answer a question."""
    result = STATE.backend.search_collection(
        name, query, k=k, mode=mode, fusion=fusion, weight=weight, filters=_filters(filters or [])
    )
    if json_out:
        print_json(result.as_json())
        return
    table(
        f"{result.collection}: {len(result.hits)} hits ({result.mode}, {result.took_ms:.1f} ms)",
        ["#", "chunk", "score", "text"],
        [
            (i + 1, h.id, f"{h.score:.4f}", (h.text[:117] + "...") if len(h.text) > 120 else h.text)
            for i, h in enumerate(result.hits)
        ],
    )
