"""Dataset system calls on a local workspace: import (with its PII screen), list, show,
first rows, and the permission each needs."""

from __future__ import annotations

import pandas as pd
import pytest

from llmos.core.errors import DataError, NotFoundError, UsageError
from llmos.ops import datasets as ops
from llmos.serve.errors import Forbidden
from tests.ops.conftest import as_role, stored


def test_import_list_show_rows(ws, intents_csv):
    result = ops.import_dataset(ws.context, intents_csv, "intents")
    assert result.created and result.ref == "intents@1" and result.rows == 150
    assert result.dataset.ref == "intents@1" and result.dataset.num_rows == 150  # as ImportResult had it
    assert result.label_column == "label" and result.labels == 3 and result.pii is None
    again = ops.import_dataset(ws.context, intents_csv, "intents")
    assert not again.created and again.version == 1

    assert [d.ref for d in ops.datasets(ws.context)] == ["intents@1"]
    assert ops.datasets(ws.context, "other") == []
    shown = ops.dataset(ws.context, "intents")
    assert shown.label_distribution == {"card": 50, "transfer": 50, "refund": 50}
    assert {c["name"]: c["kind"] for c in shown.columns} == {"text": "text", "label": "category"}
    assert shown.source == str(intents_csv.resolve())

    rows = ops.dataset_rows(ws.context, "intents@1", limit=3)
    assert rows.total == 150 and rows.columns == ["text", "label"] and len(rows.rows) == 3
    assert rows.rows == pd.read_csv(intents_csv).head(3).to_dict(orient="records")
    assert ws.dataset_frame("intents").shape == (150, 2)  # the local pandas view stays


def test_rows_are_json_values(ws, tmp_path):
    path = tmp_path / "holes.csv"
    path.write_text("text,n,label\nhello,1.5,a\n,,b\n")
    ops.import_dataset(ws.context, path, "holes")
    rows = ops.dataset_rows(ws.context, "holes").rows
    assert rows == [{"text": "hello", "n": 1.5, "label": "a"}, {"text": None, "n": None, "label": "b"}]
    with pytest.raises(UsageError, match="limit must be between 0 and 1000"):
        ops.dataset_rows(ws.context, "holes", limit=1001)


def test_pii_report_and_source_name(ws, tmp_path):
    path = tmp_path / "copy.csv"
    path.write_text("text,label\nmail jo.doe@example.org please,a\nhello there,b\n")
    result = ops.import_dataset(ws.context, path, "t", pii="report", source="tickets.csv")
    first = (result.pii or [])[0]
    assert (first.column, first.rows, first.counts) == ("text", 1, {"EMAIL": 1})
    assert result.screen_report == result.pii and result.source == "tickets.csv"


def test_a_copy_is_named_by_its_source_in_errors(ws, tmp_path):
    path = tmp_path / "tmp-123" / "upload.csv"
    path.parent.mkdir()
    path.write_bytes(b"text,label\n\xffbad,1\n")
    before = stored(ws.home)
    with pytest.raises(DataError) as caught:
        ops.import_dataset(ws.context, path, "d", source="mine.csv")
    assert caught.value.message.startswith("mine.csv: not UTF-8 text") and "tmp-123" not in str(caught.value)
    assert stored(ws.home) == before


def test_unknown_dataset_and_permissions(ws, intents_csv):
    with pytest.raises(NotFoundError, match="dataset 'ghost' not found"):
        ops.dataset(ws.context, "ghost")
    viewer = as_role(ws, "viewer")
    with pytest.raises(Forbidden, match="'data:write' permission"):
        ops.import_dataset(viewer, intents_csv, "intents")
    assert ops.datasets(viewer) == []  # reading is a viewer's right
    with pytest.raises(Forbidden, match="'data:read' permission"):
        ops.datasets(as_role(ws, "app"))
