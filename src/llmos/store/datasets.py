"""Datasets: import a file as an immutable, versioned, deduplicated dataset.

`import_dataset` reads CSV, TSV, JSONL, Parquet, CoNLL (tokens and tags) or a folder of
class subfolders of images (`store.images`), infers a schema (column types and
kinds, row count, label distribution), and stores a Parquet copy in the artifact store.
Versions are `NAME@1`, `NAME@2`, ...; importing content identical to an existing version
of the same name returns that version. The file is read and checked completely before
anything is written, and the row is inserted in one transaction.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from llmos.core.errors import DataError, NotFoundError, first_line
from llmos.core.util import check_name, sha256_file
from llmos.store.audit import record
from llmos.store.conll import read_conll
from llmos.store.db import Store
from llmos.store.images import absolute_image_paths, read_image_folder
from llmos.store.projects import check_stored_bytes
from llmos.store.schema import DatasetVersion
from llmos.store.scope import current_project
from llmos.store.versions import find_version, known_names, list_versions, next_version

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".conll": "conll",
}
LABEL_CANDIDATES = ("label", "labels", "category", "intent", "class", "target", "y")
TEXT_MIN_MEAN_CHARS = 25


@dataclass
class ImportResult:
    dataset: DatasetVersion
    created: bool
    screen_report: Any = None  # what the import's screen found (the PII counts)


# A check run on the parsed rows before anything is stored (the PII screen of
# `security.pii`, passed down by the CLI/SDK): it returns the frame to store, possibly
# transformed (redacted), or raises an `LlmosError` to refuse the import. Its `name`
# (e.g. "pii-redact") tells a transformed import from a plain one of the same file.
@dataclass
class ImportScreen:
    name: str
    apply: Callable[[pd.DataFrame, Path], pd.DataFrame]
    report: Any = None  # what the screen found, set by `apply`


def detect_format(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in set(FORMATS.values()):
            raise DataError(f"unknown format {fmt!r}: use one of csv, tsv, jsonl, parquet, conll")
        return fmt
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise DataError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}; "
            "use .csv, .tsv, .jsonl, .parquet or .conll, or pass --format"
        )
    return found


def read_table(path: Path, fmt: str) -> pd.DataFrame:
    """Read a data file strictly: UTF-8 text, a header row, at least one data row."""
    if not path.exists():
        raise NotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a data file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}: not UTF-8 text (invalid byte at offset {exc.start}); re-save it as UTF-8"
                ) from exc
            if not text.strip():
                raise DataError(f"{path}: the file is empty")
            if fmt == "conll":
                frame = read_conll(path, text)
            elif fmt == "jsonl":
                frame = pd.read_json(io.StringIO(text), lines=True, dtype=False)
            else:
                sep = "\t" if fmt == "tsv" else ","
                frame = pd.read_csv(io.StringIO(text), sep=sep, keep_default_na=False, na_values=[""])
    except DataError:
        raise
    except (ValueError, pd.errors.ParserError, OSError) as exc:
        raise DataError(f"{path}: cannot parse as {fmt}: {first_line(exc)}") from exc
    if frame.shape[1] == 0:
        raise DataError(f"{path}: no columns found")
    if len(frame) == 0:
        raise DataError(f"{path}: has a header but no data rows")
    frame.columns = [str(c) for c in frame.columns]
    return absolute_image_paths(frame, path.parent)


def _column_kind(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "binary"
    if pd.api.types.is_numeric_dtype(series):
        return "number"
    values = series.dropna()
    if len(values) and not all(isinstance(v, str) for v in values.head(1000)):
        return "json"
    strings = values.astype(str)
    n_unique = strings.nunique()
    if strings.str.len().mean() >= TEXT_MIN_MEAN_CHARS or n_unique > max(100, len(values) // 2):
        return "text"
    return "category"


def infer_schema(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = []
    for name in frame.columns:
        series = frame[name]
        kind = _column_kind(series)
        info: dict[str, Any] = {
            "name": name,
            "dtype": str(series.dtype),
            "kind": kind,
            "missing": int(series.isna().sum()),
        }
        if kind in ("category", "text", "binary"):
            info["unique"] = int(series.astype(str).nunique())
        if kind == "text":
            lengths = series.dropna().astype(str).str.split().str.len()
            info["mean_words"] = round(float(lengths.mean()), 1)
            info["max_words"] = int(lengths.max())
        if kind == "number":
            info["min"] = float(series.min())
            info["max"] = float(series.max())
            info["mean"] = round(float(series.mean()), 4)
        columns.append(info)
    return columns


def guess_label_column(frame: pd.DataFrame) -> str | None:
    lowered = {c.lower(): c for c in frame.columns}
    for cand in LABEL_CANDIDATES:
        if cand in lowered:
            return lowered[cand]
    return None


def label_distribution(frame: pd.DataFrame, column: str) -> dict[str, int]:
    counts = frame[column].astype(str).value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def import_dataset(
    store: Store,
    path: str | Path,
    name: str,
    *,
    label: str | None = None,
    fmt: str | None = None,
    screen: ImportScreen | None = None,
    source: str | None = None,
) -> ImportResult:
    """Import `path` as dataset `name`; with `screen`, the rows pass through it first
    (nothing is stored when it raises; a transforming screen stores its output).
    `source` is recorded as where the rows came from (default: `path`, resolved)."""
    check_name(name, "dataset name")
    path = Path(path)
    if path.is_dir():  # a folder of class subfolders of images
        frame, content_hash = read_image_folder(path)
        fmt = "image-folder"
    else:
        fmt = detect_format(path, fmt)
        frame = read_table(path, fmt)
        content_hash = sha256_file(path)
    if label is not None and label not in frame.columns:
        raise DataError(f"{path}: label column {label!r} not found; columns are {', '.join(frame.columns)}")
    label_col = label or guess_label_column(frame)
    if label_col is not None and frame[label_col].isna().any():
        missing = int(frame[label_col].isna().sum())
        raise DataError(f"{path}: label column {label_col!r} has {missing} empty values")
    if screen is not None:
        screened = screen.apply(frame, path)
        if not screened.equals(frame):  # a transformed file is other content than the raw one
            content_hash = hashlib.sha256(f"{content_hash}:{screen.name}".encode()).hexdigest()
        frame = screened

    with store.transaction() as session:
        existing = session.scalars(
            select(DatasetVersion).where(
                DatasetVersion.name == name, DatasetVersion.content_hash == content_hash
            )
        ).first()
        if existing is not None:
            return ImportResult(existing, created=False, screen_report=screen.report if screen else None)
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        payload = buf.getvalue()
        check_stored_bytes(store, current_project(), len(payload))  # F17: the project's quota
        artifact = store.artifacts.put_bytes(payload)
        row = DatasetVersion(
            name=name,
            version=next_version(session, DatasetVersion, name),
            content_hash=content_hash,
            format=fmt,
            source=source or str(path.resolve()),
            num_rows=len(frame),
            columns=infer_schema(frame),
            label_column=label_col,
            label_distribution=label_distribution(frame, label_col) if label_col else None,
            artifact=artifact,
            size_bytes=len(payload),
        )
        session.add(row)
        session.flush()
    record(store, "dataset.import", row.ref, detail={"rows": row.num_rows, "sha256": content_hash[:16]})
    return ImportResult(row, created=True, screen_report=screen.report if screen else None)


def get_dataset(store: Store, ref: str) -> DatasetVersion:
    row = find_version(store, DatasetVersion, ref, "dataset")
    if row is None:
        known = known_names(store, DatasetVersion)
        raise NotFoundError(f"dataset {ref!r} not found (datasets: {known}); import it first")
    return row


def get_dataset_by_id(store: Store, dataset_id: int) -> DatasetVersion:
    with store.read() as session:
        row = session.get(DatasetVersion, dataset_id)
    if row is None:
        raise NotFoundError(f"dataset id {dataset_id} not found")
    return row


def list_datasets(store: Store, name: str | None = None) -> list[DatasetVersion]:
    return list_versions(store, DatasetVersion, name)


def load_frame(store: Store, dataset: DatasetVersion) -> pd.DataFrame:
    """The dataset's table, read (and decrypted, in an encrypted workspace) in memory."""
    return pd.read_parquet(io.BytesIO(store.artifacts.read_bytes(dataset.artifact, f"dataset {dataset.ref}")))
