import json
from pathlib import Path

import pandas as pd
import pytest

from llmos.core.errors import DataError, NotFoundError
from tests.conftest import make_rows, snapshot


def write(frame: pd.DataFrame, path: Path) -> Path:
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_import_every_format_infers_schema(ws, tmp_path, suffix):
    frame = make_rows(30)
    frame["amount"] = range(30)
    result = ws.import_dataset(write(frame, tmp_path / f"d{suffix}"), "d")
    ds = result.dataset
    assert result.created and ds.ref == "d@1" and ds.num_rows == 30
    kinds = {c["name"]: c["kind"] for c in ds.columns}
    assert kinds["amount"] == "number"
    assert ds.label_column == "label"
    assert ds.label_distribution == {"card": 10, "transfer": 10, "refund": 10}
    assert ws.dataset_frame("d@1").equals(frame)


def test_versions_and_dedup(ws, tmp_path):
    first = write(make_rows(30, seed=1), tmp_path / "a.csv")
    second = write(make_rows(30, seed=2), tmp_path / "b.csv")
    assert ws.import_dataset(first, "d").dataset.version == 1
    assert ws.import_dataset(second, "d").dataset.version == 2
    again = ws.import_dataset(first, "d")
    assert not again.created and again.dataset.version == 1
    assert [d.ref for d in ws.datasets()] == ["d@1", "d@2"]
    assert ws.dataset("d").version == 2  # no version means the latest
    assert ws.dataset("d@1").content_hash != ws.dataset("d@2").content_hash


def test_identical_content_is_stored_once(ws, tmp_path):
    path = write(make_rows(30), tmp_path / "a.csv")
    ws.import_dataset(path, "x")
    files = ws.store.artifacts.files()
    ws.import_dataset(path, "y")  # another name, same bytes
    assert ws.store.artifacts.files() == files
    assert ws.dataset("y").artifact == ws.dataset("x").artifact


def test_explicit_label_column(ws, tmp_path):
    frame = pd.DataFrame({"msg": ["a b", "c d", "e f"], "tag": ["x", "y", "x"]})
    ds = ws.import_dataset(write(frame, tmp_path / "t.csv"), "t", label="tag").dataset
    assert ds.label_column == "tag" and ds.label_distribution == {"x": 2, "y": 1}


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (None, NotFoundError, "no such file"),
        (b"", DataError, "the file is empty"),
        (b"text,label\n", DataError, "no data rows"),
        (b"text,label\n\xff\xfeabc,1\n", DataError, "not UTF-8"),
        (b'text,label\n"unterminated,1\n', DataError, "cannot parse"),
    ],
)
def test_bad_files_leave_store_unchanged(ws, home, tmp_path, content, error, message):
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_bytes(content)
    before = snapshot(home)
    with pytest.raises(error, match=message) as info:
        ws.import_dataset(path, "bad")
    assert "\n" not in str(info.value)
    assert snapshot(home) == before


def test_missing_label_column_names_the_columns(ws, home, tmp_path):
    path = write(make_rows(10), tmp_path / "a.csv")
    before = snapshot(home)
    with pytest.raises(DataError, match=r"label column 'intent' not found; columns are text, label"):
        ws.import_dataset(path, "a", label="intent")
    assert snapshot(home) == before


def test_unknown_dataset_reference(ws):
    with pytest.raises(NotFoundError, match="dataset 'nope' not found"):
        ws.dataset("nope")
    with pytest.raises(NotFoundError):
        ws.dataset_frame("nope@2")


def test_schema_is_json(ws, intents_csv):
    ds = ws.import_dataset(intents_csv, "i").dataset
    json.dumps(ds.columns)
    text = next(c for c in ds.columns if c["name"] == "text")
    assert text["kind"] == "text" and text["max_words"] >= 3
