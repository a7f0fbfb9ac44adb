"""Mid-epoch checkpoints: a run that crashes between epochs' ends resumes from its last
`checkpoint_every` checkpoint and ends exactly where an uninterrupted run ends."""

import pytest

from tests.conftest import loop_settings, tiny_task


def test_mid_epoch_checkpoint_resumes_to_the_same_weights(tiny_model_dir, tmp_path):
    import torch

    from llmos.models.build import build_classifier
    from llmos.spec.schema import FullMethod
    from llmos.train.device import resolve_placement
    from llmos.train.loop import fit, latest_checkpoint

    task = tiny_task(tiny_model_dir)
    settings = loop_settings(epochs=3, warmup=0.1, weight_decay=0.01, seed=5, checkpoint_every=4)

    def train(folder, **options):
        torch.manual_seed(0)
        model = build_classifier(task.resolved, FullMethod(), 3, "mean", 0.1, 18)
        placement = resolve_placement("cpu", "fp32")
        result = fit(
            model, task.driver.collate, task.output, task.rows, settings, placement, None, folder, **options
        )
        return model, result

    full, expected = train(tmp_path / "a")

    class Crash(Exception):
        pass

    def crash(step: int) -> None:
        if step == 10:  # 6 steps an epoch: mid-epoch 2, after the checkpoint at step 8
            raise Crash

    with pytest.raises(Crash):
        train(tmp_path / "b", after_step=crash)
    checkpoint = latest_checkpoint(tmp_path / "b")
    assert checkpoint is not None and checkpoint.name == "epoch-2-batch-2.pt"
    resumed, result = train(tmp_path / "b", resume_from=checkpoint)
    assert result.steps == expected.steps == 18
    assert [h["train_loss"] for h in result.history] == pytest.approx(
        [h["train_loss"] for h in expected.history], abs=1e-5
    )
    for (name, a), (_, b) in zip(full.named_parameters(), resumed.named_parameters()):
        assert torch.allclose(a, b, atol=1e-6), name
    assert latest_checkpoint(tmp_path / "b").name == "epoch-3.pt"  # only the latest is kept
    assert len(list((tmp_path / "b").glob("*.pt"))) == 1
