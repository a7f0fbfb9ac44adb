import pytest

import llmos
from llmos.core.errors import UsageError
from tests.conftest import tiny_spec


def test_import_llmos_is_light():
    import subprocess
    import sys

    code = "import sys, llmos; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_workspace_home_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMOS_HOME", str(tmp_path / "env-home"))
    ws = llmos.Workspace()
    assert ws.home == (tmp_path / "env-home").resolve()
    ws.init()
    assert (tmp_path / "env-home" / "llmos.db").exists()


def test_predict_file_rejects_unknown_column_and_format(ws, intents_csv, tiny_model_dir, tmp_path):
    from llmos.core.errors import DataError

    ws.import_dataset(intents_csv, "intents")
    ws.train(tiny_spec(tiny_model_dir, train={"epochs": 1, "seed": 1}))
    with pytest.raises(DataError, match="text column 'body' not found"):
        ws.predict_file("tiny", intents_csv, column="body", out=tmp_path / "p.csv")
    with pytest.raises(UsageError, match=r"written as \.csv or \.jsonl"):
        ws.predict_file("tiny", intents_csv, out=tmp_path / "p.xlsx")
    assert not (tmp_path / "p.csv").exists()
