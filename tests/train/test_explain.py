"""Explanations of a text classifier's predictions (`predict --explain`, the `explain`
flag of the registry's predict route): a score per token that is integrated gradients
(its sum is the logit's change from the baseline), the same through the SDK, HTTP and the
CLI, and one clear refusal for models that are not text classifiers."""

from __future__ import annotations

import json

import pytest
import torch

from llmos import Workspace
from tests.conftest import make_rows, tiny_spec
from tests.train.synthetic import tagged_sentences


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("explain")
    ws = Workspace(folder / "ws")
    ws.init()
    make_rows(120).to_csv(folder / "intents.csv", index=False)
    ws.import_dataset(folder / "intents.csv", "intents")
    ws.train(tiny_spec(tiny_model_dir, train={"epochs": 6, "batch_size": 16, "lr": 3e-3, "head_lr": 1e-2}))
    tagged_sentences(32).to_json(folder / "ner.jsonl", orient="records", lines=True)
    ws.import_dataset(folder / "ner.jsonl", "ner")
    ws.train(
        {
            "name": "ner",
            "model": str(tiny_model_dir),
            "method": "full",
            "data": {"train": "ner"},
            "inputs": [{"name": "tokens", "type": "tokens", "max_length": 16}],
            "outputs": [{"name": "tags", "type": "tags"}],
            "train": {"epochs": 1, "batch_size": 16},
        }
    )
    return ws


def test_scores_are_integrated_gradients_of_the_predicted_label(trained):
    text = "refund my money back please"
    [row] = trained.predict_model("tiny", [text], explain=True).predictions
    explanation = row["explanation"]
    assert explanation["label"] == row["label"] and explanation["method"] == "integrated_gradients"
    assert [t["token"] for t in explanation["tokens"]] == text.split()  # no [CLS]/[SEP]

    # completeness: the scores add up to the label's logit change from the baseline
    predictor = trained.predictor("tiny")
    tok = predictor.input.tokenizer
    ids = tok(text)["input_ids"]
    base = [i if i in tok.all_special_ids else predictor.input.pad_id for i in ids]
    with torch.no_grad():
        logits = predictor.model(torch.tensor([ids, base]), torch.ones(2, len(ids), dtype=torch.long))
    k = predictor.output.labels.index(row["label"])
    change = float(logits[0, k] - logits[1, k])
    total = sum(t["score"] for t in explanation["tokens"])
    assert abs(total - change) <= 0.05 * abs(change) + 1e-3, (total, change)
    # the topic words carry the refund label, not the filler
    top = max(explanation["tokens"], key=lambda t: t["score"])["token"]
    assert top in {"refund", "money", "back"}, explanation

    plain = trained.predict_model("tiny", [text]).predictions
    assert "explanation" not in plain[0] and plain[0]["probabilities"] == row["probabilities"]


def test_http_and_cli(trained, monkeypatch, capsys):
    from fastapi.testclient import TestClient

    from llmos.api.app import create_app
    from llmos.cli.main import main
    from llmos.security.policy import open_policy
    from llmos.serve.runtime import ServeConfig, ServeRuntime

    client = TestClient(create_app(ServeRuntime(trained.store, ServeConfig(max_wait_ms=1)), open_policy()))
    r = client.post("/v1/registry/models/tiny/predict", json={"inputs": ["send a wire"], "explain": True})
    assert r.status_code == 200
    [row] = r.json()["predictions"]
    assert [t["token"] for t in row["explanation"]["tokens"]] == ["send", "a", "wire"]
    r = client.post(
        "/v1/registry/models/ner/predict", json={"inputs": [{"tokens": ["my", "card"]}], "explain": True}
    )
    assert r.status_code == 422
    assert r.json()["error"]["message"] == (
        "ner@1: explanations are for text classifiers (one text input, labels as output)"
    )

    monkeypatch.setenv("LLMOS_HOME", str(trained.home))
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["predict", "tiny", "my card arrived", "--explain", "--json"]) == 0
    [shown] = json.loads(capsys.readouterr().out)
    assert [t["token"] for t in shown["explanation"]["tokens"]] == ["my", "card", "arrived"]
    assert main(["predict", "tiny", "my card arrived", "--explain"]) == 0
    assert "card(" in capsys.readouterr().out
    assert main(["predict", "tiny", "--file", "x.txt", "--explain"]) != 0
    assert "--explain is for texts given on the command line" in capsys.readouterr().err
