"""Every fine-tuning method trains a tiny random model and lowers its loss; the saved
folder loads back to the same predictions."""

import pytest
import torch

from llmos.models.build import build_classifier, load_classifier, save_classifier
from llmos.models.peft_methods import after_optimizer_step
from llmos.spec.schema import (
    AdaLoraMethod,
    FullMethod,
    IA3Method,
    LoraMethod,
    PrefixMethod,
    PromptMethod,
)
from llmos.train.device import resolve_placement
from llmos.train.loop import fit, predict_logits
from tests.conftest import loop_settings, tiny_task

METHODS = {
    "full": (FullMethod(), 1e-3),
    "lora": (LoraMethod(r=4, alpha=8), 1e-2),
    "adalora": (AdaLoraMethod(init_r=4, target_r=2), 1e-2),
    "ia3": (IA3Method(), 5e-2),
    "prefix": (PrefixMethod(num_virtual_tokens=4), 5e-2),
    "prompt": (PromptMethod(num_virtual_tokens=4), 5e-2),
}


@pytest.mark.parametrize("method", list(METHODS))
def test_method_lowers_loss_and_round_trips(method, tiny_model_dir, tmp_path):
    cfg, lr = METHODS[method]
    task = tiny_task(tiny_model_dir)
    driver, output, rows = task.driver, task.output, task.rows
    torch.manual_seed(0)
    model = build_classifier(task.resolved, cfg, output.num_outputs, "mean", 0.0, 8 * 6)
    body, _ = model.trainable_parameters()
    total = sum(p.numel() for p in model.parameters())
    if method != "full":  # only the adapter and the head train
        assert 0 < sum(p.numel() for p in body) < total / 2
    placement = resolve_placement("cpu", "fp32")
    settings = loop_settings(lr=lr)
    result = fit(
        model,
        driver.collate,
        output,
        rows,
        settings,
        placement,
        after_step=lambda s: after_optimizer_step(model.encoder, s),
    )
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0] * 0.8, losses

    config = {
        "task": "text-classification",
        "base_model": str(tiny_model_dir),
        "method": method,
        "pooling": "mean",
        "dropout": 0.0,
        "hidden_size": 32,
        "input": {"type": "text", "column": "text", "max_length": 32},
        "output": output.state(),
    }
    save_classifier(model, task.tokenizer, config, tmp_path / "m")
    saved = {p.name for p in (tmp_path / "m").iterdir()}
    assert ("encoder" in saved) == (method == "full") and ("adapter" in saved) == (method != "full")
    loaded = load_classifier(tmp_path / "m")
    before = predict_logits(model, driver.collate, rows.features, rows.lengths, 64, placement)
    after = predict_logits(loaded.model, driver.collate, rows.features, rows.lengths, 64, placement)
    assert torch.allclose(before, after, atol=1e-5)
