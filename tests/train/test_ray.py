"""The Ray backend on a local Ray instance (part of `make test`; `llmos[ray]` is
installed by it): Ray Train with 2 DDP workers reaches the local backend's accuracy
on the same data, and Ray Data batch prediction gives the local predictions."""

import time

import pytest

from llmos.core.errors import JobError
from tests.conftest import make_rows, tiny_spec


@pytest.fixture
def ray_shutdown():
    """The Ray the run starts on this machine is stopped after the test."""
    yield
    import ray

    ray.shutdown()


def test_ray_train_matches_local_and_ray_data_predicts_the_same(ray_shutdown, ws, tmp_path, tiny_model_dir):
    make_rows(300, seed=3).to_csv(tmp_path / "train.csv", index=False)
    make_rows(90, seed=4).to_csv(tmp_path / "test.csv", index=False)
    ws.import_dataset(tmp_path / "train.csv", "tr")
    ws.import_dataset(tmp_path / "test.csv", "te")
    spec = tiny_spec(tiny_model_dir, data={"train": "tr", "test": "te"})
    local = ws.train({**spec, "name": "local"})
    distributed = ws.train({**spec, "name": "dist", "backend": {"type": "ray", "workers": 2}})
    assert distributed.model.spec["backend"]["workers"] == 2
    # each of the 2 workers runs ceil(300 / 2 / 16) = 10 steps an epoch on its shard
    assert distributed.metrics["epochs_run"] == 4
    assert abs(distributed.metrics["accuracy"] - local.metrics["accuracy"]) <= 0.05
    assert distributed.metrics["accuracy"] >= 0.9

    job = ws.submit_predict("dist", "te", backend={"type": "ray", "workers": 2}, start_kernel=False)
    from llmos.kernel import jobs
    from llmos.kernel.worker import run_job

    jobs.start(ws.store, job.id, threads=1)
    assert run_job(ws.store, job.id) == "succeeded", ws.job_log(job.id)
    on_ray = ws.prediction_frame(ws.job(job.id).result["predictions"])
    here = ws.predictor("dist").predict_frame(ws.dataset_frame("te"), "text")
    assert on_ray["text"].tolist() == here["text"].tolist()  # input order kept
    assert on_ray["prediction"].tolist() == here["prediction"].tolist()
    for label in ("card", "refund", "transfer"):
        assert on_ray[f"p_{label}"].tolist() == pytest.approx(here[f"p_{label}"].tolist(), abs=1e-5)


def test_unreachable_ray_address_fails_the_job_fast_with_the_reason(ws, intents_csv, tiny_model_dir):
    from llmos.kernel import jobs
    from llmos.kernel.ray_cluster import connect
    from llmos.kernel.worker import run_job

    ws.import_dataset(intents_csv, "intents")
    ws.train(tiny_spec(tiny_model_dir, train={"epochs": 1}))
    started = time.monotonic()
    job = ws.submit_predict(
        "tiny", "intents", backend={"type": "ray", "address": "ray://127.0.0.1:1"}, start_kernel=False
    )
    jobs.start(ws.store, job.id, threads=1)
    assert run_job(ws.store, job.id) == "failed"
    failed = ws.job(job.id)
    assert failed.error == "cannot reach the Ray cluster at ray://127.0.0.1:1: Connection refused"
    assert ws.prediction_sets() == []
    with pytest.raises(JobError, match=r"no answer within 2s|cannot reach"):
        connect("10.255.255.1:6379", 1, timeout=2)  # a black-holed address
    assert time.monotonic() - started < 30
