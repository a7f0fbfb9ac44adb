"""Every new task end to end on tiny models: train through `Workspace.train` (the one loop),
register, reload from the store and predict/evaluate through the one Predictor."""

import json

import pandas as pd
import pytest

from llmos import Workspace
from llmos.core.errors import DataError, SpecError
from tests.train.synthetic import image_folder, tabular_rows, tabular_tiers, tagged_sentences

FAST = {"batch_size": 16, "lr": 3e-3, "head_lr": 1e-2, "seed": 3, "warmup": 0.0}


def import_jsonl(ws, frame: pd.DataFrame, path, name: str) -> str:
    frame.to_json(path, orient="records", lines=True)
    return ws.import_dataset(path, name).dataset.ref


@pytest.fixture
def ner_model(ws, tmp_path, tiny_model_dir):
    import_jsonl(ws, tagged_sentences(160, seed=1), tmp_path / "train.jsonl", "ner")
    import_jsonl(ws, tagged_sentences(40, seed=2), tmp_path / "test.jsonl", "ner-test")
    spec = {
        "name": "ner",
        "model": str(tiny_model_dir),
        "method": "full",
        "data": {"train": "ner", "test": "ner-test"},
        "inputs": [{"name": "tokens", "type": "tokens", "max_length": 32}],
        "outputs": [{"name": "tags", "type": "tags"}],
        "train": {**FAST, "epochs": 8},
    }
    return ws.train(spec)


def test_token_classification_learns_entities_and_reloads(ws, ner_model):
    m = ner_model.metrics
    assert ner_model.model.task == "token-classification"
    assert m["f1"] >= 0.8, m
    assert set(m["per_class"]) == {"thing", "pay"}
    assert {"precision", "recall", "accuracy", "num_words"} <= set(m)
    fresh = Workspace(ws.home)  # loads the saved model from the artifact store
    again = fresh.evaluate("ner", "ner-test")
    assert again["f1"] == m["f1"]
    [row] = fresh.predict("ner", [["please", "send", "iban", "my", "plastic"]])
    assert len(row["tags"]) == 5
    assert {k: row["entities"][0][k] for k in ("type", "start", "end")} == {
        "type": "pay",
        "start": 1,
        "end": 3,
    }


def test_token_tag_count_mismatch_names_the_row(ws, tmp_path, ner_model):
    bad = pd.DataFrame([{"tokens": ["my", "card"], "tags": ["O", "B-thing", "O"]}])
    ref = import_jsonl(ws, bad, tmp_path / "bad.jsonl", "ner-bad")
    with pytest.raises(DataError, match=rf"dataset {ref}: row 1 has 2 tokens but 3 tags"):
        ws.evaluate("ner", ref)


def test_image_classification_and_batch_prediction_over_a_folder(ws, tmp_path):
    ws.import_dataset(image_folder(tmp_path / "train", per_class=24, seed=1), "colours")
    ws.import_dataset(image_folder(tmp_path / "test", per_class=8, seed=2), "colours-test")
    spec = {
        "name": "colours",
        "data": {"train": "colours", "test": "colours-test"},
        "inputs": [{"name": "image", "type": "image", "size": 12, "encoder": {"channels": [8, 16]}}],
        "outputs": [{"name": "label"}],
        "train": {**FAST, "epochs": 6},
    }
    out = ws.train(spec)
    assert out.model.task == "image-classification" and out.model.method == "scratch"
    assert out.metrics["accuracy"] >= 0.9, out.metrics
    assert (out.report_dir / "confusion_matrix.png").exists()
    target, count = Workspace(ws.home).predict_file("colours", tmp_path / "test", tmp_path / "pred.csv")
    predictions = pd.read_csv(target)
    assert count == 24 and {"image", "prediction", "score", "p_red"} <= set(predictions.columns)
    truth = predictions["image"].map(lambda p: p.split("/")[-2])
    assert (predictions["prediction"] == truth).mean() >= 0.9
    with pytest.raises(DataError, match=r"row 1: image .*nope.png does not exist"):
        ws.predict("colours", [str(tmp_path / "nope.png")])


def test_tabular_classification_with_an_unseen_category(ws, tmp_path):
    spec = tabular_tiers(ws, tmp_path, 240, {**FAST, "epochs": 30, "head_lr": 3e-2})
    out = ws.train(spec)
    assert out.model.task == "tabular-classification"
    assert out.metrics["accuracy"] >= 0.85, out.metrics
    rows = Workspace(ws.home).predict(
        "tiers", [{"amount": 9.5, "segment": "gold"}, {"amount": 9.5, "segment": "platinum"}]
    )
    assert rows[0]["label"] == "high" and rows[1]["label"] in {"high", "low"}  # no crash


def test_tabular_regression_reports_on_the_original_scale(ws, tmp_path):
    tabular_rows(240, seed=1).to_csv(tmp_path / "t.csv", index=False)
    ws.import_dataset(tmp_path / "t.csv", "customers", label="price")
    spec = {
        "name": "price",
        "data": {"train": "customers", "split": {"test": 0.25}},
        "inputs": [{"name": "amount", "type": "number"}, {"name": "segment", "type": "category"}],
        "outputs": [{"name": "price", "type": "number"}],
        "combiner": {"type": "gated", "hidden": 32},
        "train": {**FAST, "epochs": 40, "head_lr": 3e-2},
    }
    out = ws.train(spec)
    assert out.model.task == "tabular-regression"
    assert out.metrics["r2"] >= 0.9 and out.metrics["mae"] < 1.5, out.metrics
    [row] = Workspace(ws.home).predict("price", [{"amount": 5.0, "segment": "silver"}])
    assert abs(row["value"] - 10.0) < 2.0
    target, _ = ws.predict_file("price", tmp_path / "t.csv", tmp_path / "p.jsonl")
    first = json.loads(target.read_text().splitlines()[0])
    assert isinstance(first["prediction"], float)


def test_task_must_fit_the_features(tiny_model_dir):
    from llmos.spec import parse_spec

    spec = {
        "name": "x",
        "task": "image-classification",
        "model": str(tiny_model_dir),
        "data": {"train": "d"},
        "inputs": [{"name": "text"}],
        "outputs": [{"name": "label"}],
    }
    with pytest.raises(SpecError, match=r"does not fit inputs of type text.*'text-classification'"):
        parse_spec(spec)
    with pytest.raises(SpecError, match="model: required for text inputs"):
        parse_spec({**spec, "task": "multimodal-classification", "model": None})
    with pytest.raises(SpecError, match=r"inputs.0.encoder: text classification uses the spec's"):
        parse_spec({**spec, "task": "text-classification", "inputs": [{"name": "t", "encoder": {}}]})
