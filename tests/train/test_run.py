"""Training from a spec end to end on a tiny random model: registry, lineage, reports,
determinism, and the predict path after loading from the store."""

import pytest

from llmos.core.errors import DataError, NotFoundError
from tests.conftest import loop_settings, make_rows, snapshot, tiny_spec, tiny_task


@pytest.fixture
def trained(ws, intents_csv, tiny_model_dir):
    ws.import_dataset(intents_csv, "intents")
    return ws.train(tiny_spec(tiny_model_dir))


def test_train_registers_model_with_lineage_and_reports(ws, trained):
    model = trained.model
    assert model.ref == "tiny@1" and model.method == "full"
    assert ws.lineage("tiny") == {"train": "intents@1", "test": None}
    split = model.split
    assert split["split"]["seed"] == 1 and split["split"]["stratified"] is True
    assert split["rows"] == {"train": 120, "test": 30, "validation": 0}
    assert model.metrics["accuracy"] == trained.metrics["accuracy"] >= 0.6
    assert {
        "head.safetensors",
        "llmos_model.json",
        "spec.yaml",
        "report/confusion_matrix.png",
        "report/confusion_matrix.json",
        "report/metrics.json",
    } <= set(model.artifacts)
    assert any(k.startswith("encoder/") for k in model.artifacts)
    folder = ws.model_path("tiny@1")
    assert (folder / "report" / "confusion_matrix.png").stat().st_size > 1000
    assert trained.report_dir == folder / "report"
    assert not list((ws.home / "runs").iterdir())  # the run folder is gone once registered


def test_predictions_after_reload_match_training_eval(ws, trained):
    # a fresh workspace object loads the model from the artifact store
    from llmos import Workspace

    fresh = Workspace(ws.home)
    metrics = fresh.evaluate("tiny@1", "intents@1")
    assert metrics["num_examples"] == 150
    rows = fresh.predict("tiny", ["my card has not arrived in the post", "send money to iban"])
    assert rows[0]["label"] in {"card", "transfer", "refund"}
    assert abs(sum(rows[0]["probabilities"].values()) - 1) < 1e-4


def test_same_seed_same_result(ws, trained, tiny_model_dir):
    again = ws.train(tiny_spec(tiny_model_dir))
    assert again.model.version == 2
    assert again.history == trained.history
    assert again.metrics["accuracy"] == trained.metrics["accuracy"]


def test_separate_test_dataset_and_early_stopping(ws, tmp_path, tiny_model_dir):
    make_rows(120, seed=1).to_csv(tmp_path / "tr.csv", index=False)
    make_rows(30, seed=2).to_csv(tmp_path / "te.csv", index=False)
    ws.import_dataset(tmp_path / "tr.csv", "tr")
    ws.import_dataset(tmp_path / "te.csv", "te")
    spec = tiny_spec(tiny_model_dir, data={"train": "tr", "test": "te"})
    spec["train"] = {
        **spec["train"],
        "epochs": 6,
        "gradient_accumulation": 2,
        "early_stopping": {"patience": 1},
    }
    out = ws.train(spec)
    assert ws.lineage(out.model.ref) == {"train": "tr@1", "test": "te@1"}
    assert out.model.split["rows"]["validation"] == 12
    assert all("val_loss" in h for h in out.history)


@pytest.mark.parametrize("method", ["lora", "prompt"])
def test_peft_run_stores_adapter_only(ws, intents_csv, tiny_model_dir, method):
    ws.import_dataset(intents_csv, "intents")
    out = ws.train(tiny_spec(tiny_model_dir, method=method, name=f"t-{method}"))
    assert any(k.startswith("adapter/") for k in out.model.artifacts)
    assert not any(k.startswith("encoder/") for k in out.model.artifacts)
    assert ws.predict(out.model.ref, ["refund my money"])[0]["label"]


def test_bad_inputs_register_nothing(ws, home, intents_csv, tmp_path, tiny_model_dir):
    ws.import_dataset(intents_csv, "intents")
    before = snapshot(home)
    with pytest.raises(DataError, match="label column 'intent' not found"):
        ws.train(tiny_spec(tiny_model_dir, outputs=[{"name": "intent"}]))
    with pytest.raises(NotFoundError, match="dataset 'missing' not found"):
        ws.train(tiny_spec(tiny_model_dir, data={"train": "missing"}))
    with pytest.raises(NotFoundError, match="unknown model 'no-such-model'"):
        ws.train(tiny_spec(tiny_model_dir, model="no-such-model"))
    assert snapshot(home) == before
    frame = make_rows(30)
    frame.loc[0, "label"] = "brand-new"
    frame.to_csv(tmp_path / "other.csv", index=False)
    ws.import_dataset(tmp_path / "other.csv", "other")
    before = snapshot(home)
    with pytest.raises(DataError, match="labels the model was not trained on: 'brand-new'"):
        ws.train(tiny_spec(tiny_model_dir, data={"train": "intents", "test": "other"}))
    assert snapshot(home) == before


def test_multi_label_set_output(ws, tmp_path, tiny_model_dir):
    frame = make_rows(150)
    # a second label marks texts that mention money, on top of the topic
    frame["tags"] = [f"{lab}|money" if "money" in text else lab for text, lab in zip(frame.text, frame.label)]
    frame.to_csv(tmp_path / "ml.csv", index=False)
    ws.import_dataset(tmp_path / "ml.csv", "ml", label="tags")
    spec = tiny_spec(
        tiny_model_dir,
        name="ml",
        data={"train": "ml", "split": {"test": 0.2, "seed": 1, "stratify": False}},
        outputs=[{"type": "set", "name": "tags"}],
    )
    out = ws.train(spec)
    assert {"micro_f1", "macro_f1", "accuracy"} <= set(out.metrics)
    assert set(out.metrics["per_class"]) == {"card", "money", "refund", "transfer"}
    row = ws.predict("ml", ["refund my money back"])[0]
    assert isinstance(row["labels"], list) and set(row["probabilities"]) == set(out.metrics["per_class"])


def test_empty_labels_are_rejected_before_training(ws, tmp_path, tiny_model_dir):
    frame = make_rows(60)
    frame.loc[3, "label"] = None
    frame.to_csv(tmp_path / "holes.csv", index=False)
    ws.import_dataset(tmp_path / "holes.csv", "holes", label="text")  # label guessed wrong on purpose
    with pytest.raises(DataError, match="label column 'label' has 1 empty values"):
        ws.train(tiny_spec(tiny_model_dir, data={"train": "holes"}))


def test_resume_from_checkpoint_matches_an_uninterrupted_run(tiny_model_dir, tmp_path):
    import torch

    from llmos.models.build import build_classifier
    from llmos.spec.schema import EarlyStopping, LoraMethod
    from llmos.train.device import resolve_placement
    from llmos.train.loop import Rows, fit, latest_checkpoint

    task = tiny_task(tiny_model_dir)
    rows = task.rows
    val = Rows(rows.features[:24], rows.lengths[:24], rows.targets[:24])
    settings = loop_settings(
        epochs=4,
        warmup=0.1,
        weight_decay=0.01,
        seed=3,
        early_stopping=EarlyStopping(patience=5, metric="macro_f1"),
    )

    def train(folder, **options):
        torch.manual_seed(0)
        model = build_classifier(task.resolved, LoraMethod(r=4, alpha=8), 3, "mean", 0.1, 24)
        placement = resolve_placement("cpu", "fp32")
        result = fit(
            model, task.driver.collate, task.output, rows, settings, placement, val, folder, **options
        )
        return model, result

    full, expected = train(tmp_path / "a")

    class Crash(Exception):
        pass

    def crash_in_epoch_3(step: int) -> None:
        if step == 14:  # 6 steps an epoch
            raise Crash

    with pytest.raises(Crash):
        train(tmp_path / "b", after_step=crash_in_epoch_3)
    checkpoint = latest_checkpoint(tmp_path / "b")
    assert checkpoint is not None and checkpoint.name == "epoch-2.pt"
    resumed, result = train(tmp_path / "b", resume_from=checkpoint)
    assert result.history == expected.history and result.steps == expected.steps == 24
    for (name, a), (_, b) in zip(full.named_parameters(), resumed.named_parameters()):
        assert torch.allclose(a, b, atol=1e-6), name
