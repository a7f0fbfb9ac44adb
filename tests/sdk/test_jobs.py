"""Training and batch prediction as kernel jobs, through the SDK, with real worker
processes: a worker killed with SIGKILL mid-epoch resumes from its checkpoint and
registers exactly one model version with the metrics of an uninterrupted run; a
cancelled training job registers nothing; batch prediction writes a prediction set."""

import os
import signal
import time

import pytest

from llmos import Workspace
from llmos.core.errors import NotFoundError, SpecError, UsageError
from tests.conftest import make_rows, snapshot, tiny_spec
from tests.kernel.helpers import run_until_idle, start_scheduler, wait_for

# the resumed run repeats the uninterrupted one's arithmetic; only float summation order
# could differ, so losses are compared to 1e-4 and accuracy exactly
LOSS_TOLERANCE = 1e-4


@pytest.fixture
def crash_spec(tmp_path, tiny_model_dir):
    path = tmp_path / "rows.csv"
    make_rows(600).to_csv(path, index=False)
    train = {"epochs": 3, "batch_size": 16, "lr": 3e-3, "head_lr": 1e-2, "seed": 7, "checkpoint_every": 5}
    return path, tiny_spec(tiny_model_dir, train=train)


def test_sigkilled_training_resumes_and_registers_one_version(ws, tmp_path, crash_spec):
    data, spec = crash_spec
    reference = Workspace(tmp_path / "reference")
    reference.import_dataset(data, "intents")
    expected = reference.train(spec)

    ws.import_dataset(data, "intents")
    job = ws.submit_train(spec, cpus=1, max_attempts=2, start_kernel=False)
    thread = start_scheduler(ws.store)
    checkpoints = ws.home / "jobs" / str(job.id) / "checkpoints"
    wait_for(lambda: list(checkpoints.glob("epoch-*.pt")), what="a checkpoint")
    os.kill(ws.job(job.id).pid, signal.SIGKILL)
    thread.join(240)

    done = ws.job(job.id)
    assert done.state == "succeeded", ws.job_log(job.id)
    assert done.attempts == 2
    log = ws.job_log(job.id)
    assert "killed by SIGKILL on attempt 1; job is now queued" in log
    assert "resumed from epoch-" in log
    models = ws.models()
    assert [m.ref for m in models] == ["tiny@1"] and models[0].job_id == job.id
    assert done.result["model"] == "tiny@1"
    got = models[0].metrics
    assert got["accuracy"] == expected.metrics["accuracy"]
    assert got["loss"] == pytest.approx(expected.metrics["loss"], abs=LOSS_TOLERANCE)
    for a, b in zip(got["history"], expected.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=LOSS_TOLERANCE)
    assert not checkpoints.exists()  # the registered model replaces them


def test_cancelled_training_job_registers_nothing(ws, crash_spec):
    data, spec = crash_spec
    ws.import_dataset(data, "intents")
    spec["train"] = {**spec["train"], "epochs": 200}
    job = ws.submit_train(spec, cpus=1, start_kernel=False)
    thread = start_scheduler(ws.store)
    wait_for(lambda: ws.job(job.id).progress.get("done", 0) > 0, what="training to start")
    asked = time.monotonic()
    cancelled = ws.cancel_job(job.id, wait=5)
    assert cancelled.state == "cancelled" and time.monotonic() - asked < 5
    thread.join(60)
    assert ws.models() == [] and not list((ws.home / "runs").glob("*"))


def test_detached_train_checks_the_spec_before_queueing(ws, home, crash_spec, tiny_model_dir):
    data, _ = crash_spec
    ws.import_dataset(data, "intents")
    before = snapshot(home)
    with pytest.raises(NotFoundError, match="dataset 'missing' not found"):
        ws.submit_train(tiny_spec(tiny_model_dir, data={"train": "missing"}), start_kernel=False)
    with pytest.raises(SpecError, match=r"train\.checkpoint_every: must be >= 1"):
        ws.submit_train(tiny_spec(tiny_model_dir, train={"checkpoint_every": 0}), start_kernel=False)
    assert snapshot(home) == before


def test_batch_prediction_job_writes_a_versioned_prediction_set(ws, intents_csv, tiny_model_dir):
    ws.import_dataset(intents_csv, "intents")
    ws.train(tiny_spec(tiny_model_dir))
    first = ws.submit_predict("tiny", "intents", start_kernel=False)
    second = ws.submit_predict("tiny@1", "intents@1", name="nightly", start_kernel=False)
    start_scheduler(ws.store).join(120)
    assert ws.job(first.id).result == {
        "predictions": "tiny-on-intents@1",
        "model": "tiny@1",
        "data": "intents@1",
        "rows": 150,
    }
    assert ws.job(second.id).result["predictions"] == "nightly@1"
    frame = ws.prediction_frame("tiny-on-intents@1")
    local = ws.predictor("tiny").predict_frame(ws.dataset_frame("intents"), "text")
    assert frame["prediction"].tolist() == local["prediction"].tolist()
    assert frame["p_card"].tolist() == pytest.approx(local["p_card"].tolist(), abs=1e-6)
    sets = ws.prediction_sets()
    assert [(s.ref, s.job_id) for s in sets] == [("nightly@1", second.id), ("tiny-on-intents@1", first.id)]
    with pytest.raises(NotFoundError, match="model 'ghost' not found"):
        ws.submit_predict("ghost", "intents", start_kernel=False)


def test_multi_input_model_trains_and_predicts_a_dataset_as_jobs(ws, tmp_path):
    """A tabular spec has no spec-wide `model` (its inputs bring their own encoders); its
    training job registers the model and the batch job reads both input columns."""
    from tests.train.synthetic import tabular_tiers

    spec = tabular_tiers(ws, tmp_path, 120, {"epochs": 2, "batch_size": 16, "seed": 3})
    train = ws.submit_train(spec, cpus=1, start_kernel=False)
    run_until_idle(ws.store, 1, timeout=180)
    assert ws.job(train.id).state == "succeeded", ws.job_log(train.id)
    assert ws.model("tiers").job_id == train.id
    job = ws.submit_predict("tiers", "customers", start_kernel=False)
    run_until_idle(ws.store, 1, timeout=180)
    assert ws.job(job.id).result["rows"] == 120
    frame = ws.prediction_frame("tiers-on-customers@1")
    local = ws.predictor("tiers").predict_frame(ws.dataset_frame("customers"))
    assert frame["prediction"].tolist() == local["prediction"].tolist()
    assert {"amount", "segment", "score", "p_high", "p_low"} <= set(frame.columns)
    with pytest.raises(UsageError, match="single-input models"):
        ws.predictor("tiers").predict_frame(ws.dataset_frame("customers"), "amount")
