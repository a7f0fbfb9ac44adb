"""`llmos --url URL --token T train|jobs|kernel|predict|eval` against a real server: the
same report and exit codes as locally, the spec read on the client."""

from __future__ import annotations

import json

import pytest

from llmos.api.server import ServerThread
from llmos.security.identities import add_user, create_token, init_admin
from llmos.security.policy import build_policy
from llmos.serve.runtime import ServeConfig
from tests.cli.test_cli import one_line_error, write_spec
from tests.conftest import tiny_spec

FAST = {"epochs": 1, "batch_size": 16, "lr": 3e-3, "head_lr": 1e-2, "seed": 7}


@pytest.fixture
def remote(run, ws, intents_csv, monkeypatch):
    ws.import_dataset(intents_csv, "intents")
    store = ws.store
    init_admin(store, "root")
    add_user(store, "dev", "developer")
    token = create_token(store, "dev")[0]
    with ServerThread(store, ServeConfig(max_wait_ms=1), policy=build_policy(store)) as url:
        yield lambda *args: run("--url", url, "--token", token, *args)


def test_remote_train_reports_like_local_and_registers(remote, ws, tmp_path, tiny_model_dir):
    spec = write_spec(tmp_path, tiny_spec(tiny_model_dir, train=FAST))
    code, out, err = remote("train", str(spec), "--cpus", "1")
    assert code == 0, err
    assert "tiny@1 on the test set" in out and "precision" in out  # the metrics table
    assert "registered tiny@1 (job 1); confusion matrix: http://" in out
    assert "/v1/registry/models/tiny@1/report/confusion_matrix.png" in out
    assert "attempt 1 of 2 started" in err  # the job's log, followed through its events
    assert ws.model("tiny@1").job_id == 1

    code, out, _ = remote("jobs", "list", "--json")
    assert code == 0 and [(j["id"], j["state"]) for j in json.loads(out)] == [(1, "succeeded")]
    code, out, _ = remote("jobs", "show", "1")
    assert code == 0 and "succeeded" in out
    code, out, _ = remote("jobs", "logs", "1")
    assert code == 0 and "succeeded: {'model': 'tiny@1'" in out
    code, out, _ = remote("kernel", "status", "--json")
    assert code == 0 and json.loads(out)["queued"] == 0
    code, out, _ = remote("predict", "tiny", "refund please", "--json")
    assert code == 0 and json.loads(out)[0]["label"] in {"card", "refund", "transfer"}
    code, out, err = remote("eval", "tiny", "--data", "intents", "--json")
    assert code == 0, err
    assert json.loads(out)["metrics"]["num_examples"] == 150
    code, _, err = remote("jobs", "cancel", "1")
    assert code == 9 and "job 1 has already succeeded; there is nothing to cancel" in one_line_error(err)
    code, _, err = remote("kernel", "start")
    assert code == 2 and "runs on the workspace's machine" in one_line_error(err)


def test_remote_failures_exit_as_locally(run, remote, ws, tmp_path, tiny_model_dir):
    bad = write_spec(tmp_path, tiny_spec(tiny_model_dir, train={"epochs": 0, "lrr": 1}))
    local = run("train", str(bad))
    remote_ = remote("train", str(bad))
    assert local[0] == remote_[0] == 5
    assert "train.epochs" in one_line_error(remote_[2]) and "train.lrr" in one_line_error(remote_[2])
    assert ws.jobs() == []
    # a job that fails once it runs (no CUDA here): the job's failure, exit 9, both ways
    (tmp_path / "cuda").mkdir()
    failing = write_spec(tmp_path / "cuda", tiny_spec(tiny_model_dir, train={**FAST, "device": "cuda"}))
    code, _, err = remote("train", str(failing), "--cpus", "1")
    local_code, _, local_err = run("train", str(failing), "--cpus", "1")
    assert code == local_code == 9, err
    assert "failed" in err.strip().splitlines()[-1] and "failed" in local_err.strip().splitlines()[-1]
    assert ws.models() == []
    code, _, err = remote("jobs", "show", "99")
    assert code == 3 and "job 99 not found" in one_line_error(err)
