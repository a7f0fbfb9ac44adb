"""Differential privacy (DP-SGD through Opacus) in the one training loop: the
accountant's epsilon stays within the target, the model still learns, a run that would
pass its budget stops, and bad privacy settings are spec errors."""

from __future__ import annotations

import pytest

from llmos.core.errors import SpecError, TrainingError
from tests.conftest import loop_settings, tiny_spec, tiny_task


def private_settings(epsilon: float = 8.0, **overrides):
    from llmos.train.privacy import PrivacySettings

    return loop_settings(privacy=PrivacySettings(epsilon, 1e-3, 1.0), **overrides)


def train(task, settings, folder=None, **options):
    import torch

    from llmos.models.build import build_classifier
    from llmos.spec.schema import LoraMethod
    from llmos.train.device import resolve_placement
    from llmos.train.loop import fit

    torch.manual_seed(0)
    model = build_classifier(task.resolved, LoraMethod(r=4, alpha=8), 3, "mean", 0.0, 100)
    placement = resolve_placement("cpu", "fp32")
    result = fit(
        model, task.driver.collate, task.output, task.rows, settings, placement, None, folder, **options
    )
    return model, result


def test_lora_trains_privately_within_the_budget(tiny_model_dir):
    import torch

    task = tiny_task(tiny_model_dir, n=192)
    model, result = train(task, private_settings(8.0, epochs=6, lr=2e-2, head_lr=5e-2))
    privacy = result.privacy
    assert privacy is not None
    print(
        f"\nepsilon {privacy['epsilon']} (target 8), noise {privacy['noise_multiplier']}, "
        f"history {result.history}"
    )
    assert 0 < privacy["epsilon"] <= 8.0
    assert privacy["noise_multiplier"] > 0 and privacy["steps"] == result.steps
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    # the hooks are gone: the model predicts and lists its parameters as a plain model
    assert not any(hasattr(p, "grad_sample") for p in model.parameters())
    with torch.no_grad():
        model(**task.driver.collate(task.rows.features[:4]))


def test_a_smaller_budget_means_more_noise(tiny_model_dir):
    task = tiny_task(tiny_model_dir, n=96)
    _, loose = train(task, private_settings(8.0, epochs=1))
    _, tight = train(task, private_settings(1.0, epochs=1))
    assert tight.privacy["noise_multiplier"] > loose.privacy["noise_multiplier"]
    assert tight.privacy["epsilon"] <= 1.0 < loose.privacy["epsilon"] <= 8.0


def test_a_resumed_run_given_more_epochs_stops_at_its_budget(tiny_model_dir, tmp_path):
    from llmos.train.loop import latest_checkpoint

    task = tiny_task(tiny_model_dir, n=96)
    _, first = train(task, private_settings(2.0, epochs=2), tmp_path)
    checkpoint = latest_checkpoint(tmp_path)
    assert checkpoint is not None and first.privacy["epsilon"] <= 2.0
    # the same budget over 6 epochs: epochs 1-2 already spent nearly all of it
    with pytest.raises(
        TrainingError, match=r"privacy budget: epoch 3 would spend epsilon .* > privacy.epsilon 2"
    ):
        train(task, private_settings(2.0, epochs=6), tmp_path, resume_from=checkpoint)


@pytest.mark.parametrize(
    "privacy, overrides, message",
    [
        ({"epsilon": 0}, {}, "privacy.epsilon"),
        ({"epsilon": 8, "delta": 0.5}, {}, "privacy.delta"),
        ({"epsilon": 8, "max_grad_norm": -1}, {}, "privacy.max_grad_norm"),
        ({"epsilon": 8, "sigma": 1}, {}, "privacy.sigma"),
        ({"epsilon": 8}, {"method": "full"}, "lora or frozen, not text-classification with full"),
        ({"epsilon": 8}, {"method": "adalora"}, "with adalora"),
        ({"epsilon": 8}, {"method": "lora", "train": {"gradient_accumulation": 2}}, "gradient_accumulation"),
    ],
)
def test_bad_privacy_settings_are_spec_errors(tiny_model_dir, privacy, overrides, message):
    from llmos.spec.load import parse_spec

    spec = {**tiny_spec(tiny_model_dir, method="lora", privacy=privacy), **overrides}
    with pytest.raises(SpecError) as err:
        parse_spec(spec)
    assert message in str(err.value) + " ".join(err.value.problems)


def test_private_runs_take_private_defaults_unless_the_spec_sets_them(tiny_model_dir):
    from llmos.spec.load import parse_spec

    spec = tiny_spec(tiny_model_dir, method="lora", privacy={"epsilon": 8}, train={"seed": 1})
    parsed = parse_spec(spec)
    assert (parsed.train.epochs, parsed.train.batch_size, parsed.train.lr) == (10, 64, 5e-3)
    again = parse_spec(parsed.model_dump(mode="json"))  # a job's copy of the spec
    assert again.train == parsed.train
    own = parse_spec(tiny_spec(tiny_model_dir, method="lora", privacy={"epsilon": 8}))
    assert (own.train.epochs, own.train.batch_size, own.train.lr) == (4, 16, 3e-3)
