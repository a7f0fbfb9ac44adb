"""Datasets: import a file as a versioned dataset, list versions, read schema, statistics
and first rows."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import Field

from llmos.core.errors import LlmosError, UsageError
from llmos.ops.context import Context
from llmos.ops.registry import operation
from llmos.ops.results import Result, Timestamp
from llmos.store.schema import DatasetVersion

MAX_ROWS = 1000  # first rows one call returns at most


class DatasetInfo(Result):
    """One dataset version: where it came from, its schema (columns with their kind and
    statistics) and its label distribution."""

    ref: str = Field(description="NAME@VERSION")
    name: str
    version: int
    rows: int = Field(description="Number of rows")
    format: str = Field(description="csv, tsv, jsonl, parquet, conll or image-folder")
    label_column: str | None = None
    labels: int = Field(0, description="How many distinct labels the label column holds")
    content_hash: str = Field(description="sha256 of the imported content")
    created_at: Timestamp
    source: str = Field(description="The file it was imported from")
    size_bytes: int = Field(description="Size of its stored (Parquet) copy")
    columns: list[dict[str, Any]] = Field(
        description="Per column: name, dtype, kind (text, category, number, binary, json), "
        "missing, and unique / mean_words / max_words / min / max / mean as they apply"
    )
    label_distribution: dict[str, int] | None = Field(None, description="Rows per label")
    artifact: str = Field(description="sha256 of its stored copy (identical content is stored once)")

    @property
    def num_rows(self) -> int:  # the store row's name for `rows`
        return self.rows


class PiiColumn(Result):
    """PII found in one text column by an import's screen."""

    column: str
    rows: int = Field(description="Rows holding any")
    counts: dict[str, int] = Field(description="Spans found per type (EMAIL, PHONE, IBAN, ...)")


class ImportInfo(DatasetInfo):
    """The imported (or, for identical content, the existing) dataset version."""

    created: bool = Field(description="False when identical content was already this dataset's version")
    pii: list[PiiColumn] | None = Field(
        None, description="With pii=report or redact: what the screen found, per text column"
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="What may stop a model learning from it: text columns the default model's "
        "tokenizer reads mostly as unknown tokens",
    )

    @property
    def dataset(self) -> DatasetInfo:
        fields = {k: getattr(self, k) for k in DatasetInfo.model_fields}
        return DatasetInfo(**fields)

    @property
    def screen_report(self) -> list[PiiColumn] | None:
        return self.pii


class DatasetRows(Result):
    """The first rows of a dataset version, as JSON values."""

    ref: str
    total: int = Field(description="Rows in the dataset")
    columns: list[str]
    rows: list[dict[str, Any]]


def dataset_info(row: DatasetVersion) -> DatasetInfo:
    return DatasetInfo(
        ref=row.ref,
        name=row.name,
        version=row.version,
        rows=row.num_rows,
        format=row.format,
        label_column=row.label_column,
        labels=len(row.label_distribution or {}),
        content_hash=row.content_hash,
        created_at=row.created_at,
        source=row.source,
        size_bytes=row.size_bytes,
        columns=row.columns,
        label_distribution=row.label_distribution,
        artifact=row.artifact,
    )


@operation("data:write")
def import_dataset(
    ctx: Context,
    path: str | os.PathLike[str],
    name: str,
    *,
    label: str | None = None,
    format: str | None = None,
    pii: str = "off",
    source: str | None = None,
) -> ImportInfo:
    """Import a file as a new immutable dataset version (identical content: the same version).

    `pii`: `off` (no scan), `report` (counts per column and type in `pii`), `redact`
    (store `[EMAIL]`-style tags instead of the values) or `reject` (refuse a file holding
    any). `source` is the name the file goes by when `path` is a copy of it (an HTTP
    upload's file name): error messages and the recorded source name it instead."""
    from llmos.security.pii import import_screen
    from llmos.store.datasets import import_dataset as store_import

    screen = import_screen(pii)
    try:
        result = store_import(
            ctx.store, Path(path), name, label=label, fmt=format, screen=screen, source=source
        )
    except LlmosError as exc:
        if source:  # the copy's path means nothing to the caller: name their file
            exc.message = exc.message.replace(str(path), source)
            exc.args = (exc.message,)
        raise
    found = None
    if pii in ("report", "redact"):
        found = [PiiColumn(column=c.column, rows=c.rows, counts=c.counts) for c in result.screen_report or []]
    info = dataset_info(result.dataset)
    warnings = script_warnings(ctx, result.dataset)
    return ImportInfo(**info.model_dump(), created=result.created, pii=found, warnings=warnings)


def script_warnings(ctx: Context, row: DatasetVersion) -> list[str]:
    """A line per mostly-CJK text column that MiniLM (the default for other text) maps
    to unknown tokens for more than `UNKNOWN_WARN` of its characters, naming the model
    `model: auto` picks for it instead."""
    from llmos.modalities.scripts import UNKNOWN_WARN, mostly_cjk, unknown_share
    from llmos.store.datasets import load_frame

    # short reviews with few distinct values count as categories in the schema: any string
    # column but the label is read
    text = [
        c["name"]
        for c in row.columns
        if c.get("kind") in ("text", "category") and c["name"] != row.label_column
    ]
    if not text:
        return []
    frame = load_frame(ctx.store, row)
    columns = [c for c in text if c in frame.columns and mostly_cjk(frame[c].tolist())]
    if not columns:
        return []
    from llmos.models.build import load_tokenizer
    from llmos.models.zoo import DEFAULT_CJK_MODEL, DEFAULT_TEXT_MODEL, resolve_model

    tokenizer = load_tokenizer(resolve_model(DEFAULT_TEXT_MODEL).path)
    found = []
    for column in columns:
        share = unknown_share(tokenizer, frame[column].tolist())
        if share > UNKNOWN_WARN:
            found.append(
                f"column {column!r} is mostly Chinese, Japanese or Korean text: {DEFAULT_TEXT_MODEL} maps "
                f"{share:.0%} of its characters to unknown tokens; train with `model: auto` "
                f"(picks {DEFAULT_CJK_MODEL}) or another model whose tokenizer reads it"
            )
    return found


@operation("data:read")
def datasets(ctx: Context, name: str | None = None) -> list[DatasetInfo]:
    """Every dataset version (of dataset `name`), oldest first."""
    from llmos.store.datasets import list_datasets

    return [dataset_info(row) for row in list_datasets(ctx.store, name)]


@operation("data:read")
def dataset(ctx: Context, ref: str) -> DatasetInfo:
    """One dataset version (NAME: the latest): schema, statistics and label distribution."""
    from llmos.store.datasets import get_dataset

    return dataset_info(get_dataset(ctx.store, ref))


@operation("data:read")
def dataset_rows(ctx: Context, ref: str, limit: int = 10) -> DatasetRows:
    """The first `limit` rows of a dataset version (at most 1000), as JSON values."""
    from llmos.store.datasets import get_dataset, load_frame

    if not 0 <= limit <= MAX_ROWS:
        raise UsageError(f"limit must be between 0 and {MAX_ROWS}, not {limit}")
    row = get_dataset(ctx.store, ref)
    frame = load_frame(ctx.store, row)
    head = frame.head(limit)
    # pandas writes NaN as null and numpy scalars, timestamps and bytes as JSON values
    rows = json.loads(head.to_json(orient="records", force_ascii=False, date_format="iso"))
    return DatasetRows(ref=row.ref, total=len(frame), columns=[str(c) for c in frame.columns], rows=rows)
