"""`llmos data import|list|show` and `llmos predictions list`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from llmos.cli.output import out, print_json, table
from llmos.cli.state import STATE

app = typer.Typer(help="Import, list and inspect datasets.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="CSV, TSV, JSONL or Parquet file.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name.")],
    label: Annotated[
        str | None, typer.Option("--label", help="Label column (default: label/category/...).")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv, tsv, jsonl or parquet (default: extension)."),
    ] = None,
    pii: Annotated[
        str,
        typer.Option(
            "--pii",
            help="Scan text columns for PII: off, report (counts), redact (store [EMAIL]-style "
            "tags) or reject (refuse a file holding any).",
        ),
    ] = "off",
    json_out: JsonOpt = False,
) -> None:
    """Import a file as a new immutable dataset version (identical content: same version);
    with --url, the file is uploaded to the server."""
    result = STATE.backend.import_dataset(path, name, label=label, format=fmt, pii=pii)
    found = result.pii or []
    if json_out:
        print_json(result.as_json())
        return
    if pii in ("report", "redact"):
        table(
            f"PII found ({'redacted' if pii == 'redact' else 'stored as is'})",
            ["column", "rows", "found"],
            [(c.column, c.rows, ", ".join(f"{k} {v}" for k, v in c.counts.items()) or "-") for c in found],
        )
    verb = "imported" if result.created else "unchanged, already"
    out.print(
        f"{verb} {result.ref}: {result.rows} rows, {len(result.columns)} columns"
        + (f", label {result.label_column!r} with {result.labels} values" if result.label_column else "")
    )
    for line in result.warnings:
        out.print(f"[yellow]warning:[/yellow] {line}")


@app.command("list")
def list_(
    name: Annotated[str | None, typer.Argument(help="Only versions of this dataset.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List dataset versions."""
    rows = [d.as_json() for d in STATE.backend.datasets(name)]
    if json_out:
        print_json(rows)
        return
    table(
        None,
        ["dataset", "rows", "label", "labels", "format", "created"],
        [(r["ref"], r["rows"], r["label_column"], r["labels"], r["format"], r["created_at"]) for r in rows],
    )


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    rows: Annotated[int, typer.Option("--rows", help="How many first rows to show.")] = 5,
    json_out: JsonOpt = False,
) -> None:
    """Schema, statistics, label distribution and first rows of a dataset version."""
    backend = STATE.backend
    ds = backend.dataset(ref)
    head = backend.dataset_rows(ds.ref, rows)
    if json_out:
        print_json({**ds.as_json(), "head": head.rows})
        return
    source = escape(str(ds.source))
    out.print(f"[bold]{ds.ref}[/bold]  {ds.rows} rows  from {source}  sha256 {ds.content_hash[:12]}")
    table(
        "columns",
        ["column", "kind", "dtype", "missing", "unique", "details"],
        [
            (
                c["name"],
                c["kind"],
                c["dtype"],
                c["missing"],
                c.get("unique", ""),
                ", ".join(f"{k} {c[k]}" for k in ("mean_words", "max_words", "min", "max", "mean") if k in c),
            )
            for c in ds.columns
        ],
    )
    if ds.label_distribution:
        dist = sorted(ds.label_distribution.items(), key=lambda kv: -kv[1])
        table(f"label {ds.label_column!r} ({len(dist)} values)", ["label", "rows"], dist)
    table("first rows", head.columns, [[_text(r.get(c)) for c in head.columns] for r in head.rows])


def _text(value: object) -> str:
    return "" if value is None else str(value)


predictions_app = typer.Typer(help="Prediction sets written by batch prediction jobs.", no_args_is_help=True)


@predictions_app.command("list")
def predictions_list(
    name: Annotated[str | None, typer.Argument(help="Only the versions of this prediction set.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Prediction sets (`llmos predict MODEL --data D` writes one per job), newest versions last."""
    rows = [p.as_json() for p in STATE.backend.prediction_sets(name)]
    if json_out:
        print_json(rows)
        return
    table(
        None,
        ["prediction set", "rows", "job", "created"],
        [(r["ref"], r["rows"], r["job_id"], r["created_at"]) for r in rows],
    )
