"""Pretrained encoders inside the fusion model: a Hugging Face vision model (a tiny random
ViT here) and PEFT-adapted encoders, saved as adapters and reloaded to the same outputs."""

import json

import pytest
import torch

from llmos import Workspace
from tests.train.synthetic import image_folder, image_text_rows


@pytest.fixture(scope="module")
def tiny_vit_dir(tmp_path_factory):
    from transformers import ViTConfig, ViTModel

    folder = tmp_path_factory.mktemp("tiny-vit")
    config = ViTConfig(
        image_size=12,
        patch_size=4,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    torch.manual_seed(0)
    ViTModel(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.5, 0.4, 0.3], "image_std": [0.2, 0.2, 0.2], "size": {"height": 12}})
    )
    return folder


def test_vision_model_with_lora_trains_and_reloads(ws, tmp_path, tiny_vit_dir):
    ws.import_dataset(image_folder(tmp_path / "train", per_class=16, seed=1), "colours")
    spec = {
        "name": "vit",
        "data": {"train": "colours", "split": {"test": 0.25}},
        "inputs": [
            {
                "name": "image",
                "type": "image",
                "size": 32,  # the model's own 12 wins: a ViT reads the size it was built for
                "encoder": {"model": str(tiny_vit_dir), "method": {"type": "lora", "r": 4}},
                "augment": None,
            }
        ],
        "outputs": [{"name": "label"}],
        "train": {"epochs": 6, "batch_size": 16, "lr": 1e-2, "head_lr": 1e-2, "seed": 1, "warmup": 0.0},
    }
    out = ws.train(spec)
    assert out.model.method == "lora" and out.model.base_model == str(tiny_vit_dir)
    assert out.metrics["accuracy"] >= 0.8, out.metrics
    predictor = Workspace(ws.home).predictor("vit")
    vit = predictor.model.encoders[0].model
    assert {n for n, p in vit.named_parameters() if p.requires_grad} == {
        n for n, _ in vit.named_parameters() if "lora_" in n
    }
    assert predictor.input.drivers[0].size == 12 and predictor.input.drivers[0].mean == [0.5, 0.4, 0.3]
    assert Workspace(ws.home).evaluate("vit", "colours")["accuracy"] >= 0.8


def test_lora_text_encoder_in_a_fused_model_reloads_identically(ws, tmp_path, tiny_model_dir):
    path = tmp_path / "imgs" / "pairs.csv"
    image_text_rows(tmp_path / "imgs", 48, seed=1).to_csv(path, index=False)
    ws.import_dataset(path, "pairs")
    spec = {
        "name": "fused-lora",
        "model": str(tiny_model_dir),
        "method": {"type": "lora", "r": 4},
        "data": {"train": "pairs", "split": {"test": 0.25}},
        "inputs": [
            {"name": "photo", "type": "image", "size": 12, "encoder": {"channels": [8]}},
            {"name": "note", "max_length": 16},
        ],
        "outputs": [{"name": "label"}],
        "combiner": {"type": "transformer", "hidden": 16, "heads": 2},
        "train": {"epochs": 2, "batch_size": 16, "seed": 1},
    }
    out = ws.train(spec)
    assert out.model.method == "lora"
    frame = ws.dataset_frame("pairs")
    trained = ws.predictor("fused-lora").logits(frame)
    reloaded = Workspace(ws.home).predictor("fused-lora").logits(frame)
    assert torch.allclose(trained, reloaded, atol=1e-5)
    names = [
        n for n, p in Workspace(ws.home).predictor("fused-lora").model.named_parameters() if "lora_" in n
    ]
    assert names  # the text encoder is adapted, not replaced
