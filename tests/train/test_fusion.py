"""Multimodal fusion: a label that needs both the image and the text is learned by the
fused model and by neither single-input model, for every combiner, under a fixed seed."""

import pytest

from llmos import Workspace
from llmos.core.errors import UsageError
from tests.train.synthetic import image_text_rows

IMAGE = {"name": "photo", "type": "image", "size": 12, "encoder": {"channels": [8, 16]}}
TEXT = {"name": "note", "max_length": 16}


@pytest.fixture
def pairs(ws, tmp_path):
    for name, n, seed in (("pairs", 240, 1), ("pairs-test", 80, 2)):
        path = tmp_path / "imgs" / f"{name}.csv"  # beside the images: relative paths resolve
        image_text_rows(tmp_path / "imgs", n, seed).to_csv(path, index=False)
        ws.import_dataset(path, name)
    return ws


def spec(tiny_model_dir, name, inputs, combiner=None):
    out = {
        "name": name,
        "model": str(tiny_model_dir),
        "method": "full",
        "data": {"train": "pairs", "test": "pairs-test"},
        "inputs": inputs,
        "outputs": [{"name": "label"}],
        "train": {"epochs": 12, "batch_size": 16, "lr": 3e-3, "head_lr": 3e-3, "seed": 5, "warmup": 0.0},
    }
    if combiner:
        out["combiner"] = combiner
    return out


def test_fusion_beats_each_single_input(pairs, tiny_model_dir):
    ws = pairs
    image_only = ws.train(spec(tiny_model_dir, "image-only", [IMAGE])).metrics["accuracy"]
    text_only = ws.train(spec(tiny_model_dir, "text-only", [TEXT])).metrics["accuracy"]
    fused = {}
    for kind in ("concat", "gated", "transformer"):
        combiner = {"type": kind, "hidden": 32, "heads": 2}
        outcome = ws.train(spec(tiny_model_dir, f"fused-{kind}", [IMAGE, TEXT], combiner))
        assert outcome.model.task == "multimodal-classification"
        fused[kind] = outcome.metrics["accuracy"]
    best_single = max(image_only, text_only)
    assert best_single <= 0.7, (image_only, text_only)
    for kind, accuracy in fused.items():
        assert accuracy >= 0.85 and accuracy - best_single >= 0.2, (kind, fused, image_only, text_only)


def test_fused_model_predicts_rows_after_reload(pairs, tiny_model_dir, tmp_path):
    ws = pairs
    ws.train(spec(tiny_model_dir, "fused", [IMAGE, {**TEXT, "encoder": {"method": "frozen"}}]))
    fresh = Workspace(ws.home)
    metrics = fresh.evaluate("fused", "pairs-test")
    assert metrics["num_examples"] == 80
    frame = ws.dataset_frame("pairs-test").head(3)
    rows = fresh.predict("fused", frame[["photo", "note"]].to_dict(orient="records"))
    assert all(r["label"] in {"yes", "no"} for r in rows)
    with pytest.raises(UsageError, match=r"reads 2 inputs \(photo, note\)"):
        fresh.predict("fused", ["just a text"])
    encoder = fresh.predictor("fused").model.encoders[1].model
    assert not any(p.requires_grad for p in encoder.parameters())  # frozen stays frozen
