"""`llmos data import --pii report|redact|reject`: the stored dataset never holds what
was redacted, and a rejected file stores nothing."""

from __future__ import annotations

import json

import pandas as pd
import pytest

ROWS = [
    ("my card has not arrived yet", "card_arrival"),
    ("please refund to GB82 WEST 1234 5698 7654 32 today", "refund"),
    ("call me on +44 20 7946 0958 or mail jo.doe@example.org", "contact"),
    ("order #48210395 shipped on 2024-03-15", "delivery"),
]


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "tickets.csv"
    pd.DataFrame(ROWS, columns=["text", "label"]).to_csv(path, index=False)
    return path


def test_report_counts_per_column_and_type(run, csv_file):
    code, out, _ = run("data", "import", str(csv_file), "--name", "t", "--pii", "report", "--json")
    assert code == 0
    found = {c["column"]: c for c in json.loads(out)["pii"]}
    assert found["text"]["counts"] == {"EMAIL": 1, "IBAN": 1, "PHONE": 1}
    assert found["text"]["rows"] == 2 and found["label"]["rows"] == 0
    code, out, _ = run("data", "show", "t", "--json")
    assert "jo.doe@example.org" in out  # report stores the rows as they are


def test_redact_stores_no_raw_value(run, csv_file, home):
    code, out, _ = run("data", "import", str(csv_file), "--name", "t", "--pii", "redact")
    assert code == 0 and "EMAIL 1" in out
    code, out, _ = run("data", "show", "t", "--json")
    head = json.loads(out)["head"]
    assert head[2]["text"] == "call me on [PHONE] or mail [EMAIL]"
    assert head[3]["text"] == "order #48210395 shipped on 2024-03-15"  # look-alikes kept
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"jo.doe@example.org" not in data and b"7946 0958" not in data, path
    # a later plain import of the same file is a new version (other content)
    code, out, _ = run("data", "import", str(csv_file), "--name", "t", "--json")
    assert json.loads(out)["created"] is True


def test_reject_names_the_first_row_and_column_and_stores_nothing(run, csv_file):
    code, out, err = run("data", "import", str(csv_file), "--name", "t", "--pii", "reject")
    assert code == 4
    assert "row 2, column 'text' holds PII (IBAN)" in err + out
    assert "Traceback" not in err
    code, out, _ = run("data", "list", "--json")
    assert json.loads(out) == []


def test_reject_accepts_a_clean_file(run, tmp_path):
    path = tmp_path / "clean.csv"
    pd.DataFrame(ROWS[:1] + ROWS[3:], columns=["text", "label"]).to_csv(path, index=False)
    code, out, _ = run("data", "import", str(path), "--name", "c", "--pii", "reject", "--json")
    assert code == 0 and json.loads(out)["rows"] == 2


def test_an_unknown_mode_is_a_usage_error(run, csv_file):
    code, out, err = run("data", "import", str(csv_file), "--name", "t", "--pii", "maybe")
    assert code == 2 and "--pii 'maybe'" in err + out
