"""The new tasks through the `llmos` command: the shipped example specs, token tagging,
prediction files, and one-line errors for bad token files."""

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.train.synthetic import tagged_sentences

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_spec_is_valid(run, example):
    code, out, err = run("spec", "check", str(example))
    assert code == 0 and "valid" in out, err


def test_tabular_example_trains_and_predicts_an_unseen_segment(run, tmp_path):
    claims = ROOT / "examples" / "data" / "claims.csv"
    assert run("data", "import", str(claims), "--name", "claims", "--label", "decision")[0] == 0
    code, out, err = run("train", str(ROOT / "examples" / "claims_tabular.yaml"), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["model"] == "claims-tabular@1" and result["metrics"]["accuracy"] >= 0.7
    rows = pd.read_csv(claims).head(4)
    rows.loc[0, "segment"] = "platinum"  # never seen in training: the unknown bucket
    rows.to_csv(tmp_path / "new.csv", index=False)
    code, out, err = run(
        "predict", "claims-tabular", "--file", str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.csv")
    )
    assert code == 0, err
    predicted = pd.read_csv(tmp_path / "p.csv")
    assert len(predicted) == 4 and set(predicted["prediction"]) <= {"approved", "flagged"}
    code, out, err = run("train", str(ROOT / "examples" / "claims_payout.yaml"))
    assert code == 0, err
    assert "R2 0.9" in out and "registered claims-payout@1" in out  # regression example


def test_token_tagging_from_the_command_line(run, tmp_path, tiny_model_dir):
    tagged_sentences(120, seed=1).to_json(tmp_path / "ner.jsonl", orient="records", lines=True)
    assert run("data", "import", str(tmp_path / "ner.jsonl"), "--name", "ner")[0] == 0
    spec = {
        "name": "ner",
        "model": str(tiny_model_dir),
        "method": "full",
        "data": {"train": "ner", "split": {"test": 0.25}},
        "inputs": [{"name": "tokens", "type": "tokens", "max_length": 32}],
        "outputs": [{"name": "tags", "type": "tags"}],
        "train": {"epochs": 8, "batch_size": 16, "lr": 3e-3, "head_lr": 1e-2, "seed": 3, "warmup": 0.0},
    }
    path = tmp_path / "ner.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    code, out, err = run("train", str(path))
    assert code == 0, err
    assert "F1" in out and "thing" in out and "registered ner@1" in out
    code, out, _ = run("predict", "ner", "please send iban my plastic", "--json")
    [row] = json.loads(out)
    assert len(row["tags"]) == 5 and row["entities"]
    code, out, _ = run("eval", "ner", "--data", "ner", "--json")
    assert code == 0 and json.loads(out)["metrics"]["f1"] > 0.5


def test_conll_line_without_tag_is_one_line_error(run, tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_text("Paris\tB-location\nis\tO\n\nnice\n")
    code, _, err = run("data", "import", str(bad), "--name", "bad")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 4 and len(lines) == 1 and "line 4: one token, no tag ('nice')" in lines[0]
