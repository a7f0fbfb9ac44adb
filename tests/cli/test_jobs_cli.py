"""`llmos train --detach`, `llmos jobs ...`, `llmos kernel ...` and `llmos predict --data`
as a user runs them, with a kernel started on demand and real worker processes."""

import json

import pytest

from tests.cli.test_cli import one_line_error, write_spec
from tests.conftest import tiny_spec


def test_detached_training_then_jobs_verbs(run, tmp_path, intents_csv, tiny_model_dir):
    run("data", "import", str(intents_csv), "--name", "intents")
    spec = write_spec(tmp_path, tiny_spec(tiny_model_dir))
    code, out, err = run("train", str(spec), "--detach", "--priority", "3", "--cpus", "1", "--json")
    assert code == 0, err
    queued = json.loads(out)
    assert queued["state"] == "queued" and queued["kind"] == "train" and queued["priority"] == 3
    job = str(queued["id"])

    code, out, _ = run("jobs", "logs", job, "-f")  # the kernel was started on demand
    assert code == 0 and "succeeded: {'model': 'tiny@1'" in out
    code, out, _ = run("jobs", "list", "--json")
    listed = json.loads(out)
    assert [(j["id"], j["state"], j["result"]["model"]) for j in listed] == [
        (int(job), "succeeded", "tiny@1")
    ]
    code, out, _ = run("jobs", "show", job, "--json")
    shown = json.loads(out)
    assert shown["payload"]["spec"]["name"] == "tiny" and shown["threads"] == 1
    code, out, _ = run("jobs", "show", job)
    assert code == 0 and "succeeded" in out
    code, out, _ = run("jobs", "logs", job, "--json")
    assert "attempt 1 of 2 started" in json.loads(out)["log"]

    code, out, err = run("predict", "tiny", "--data", "intents", "--name", "scored", "--json")
    assert code == 0, err
    assert json.loads(out)["predictions"] == "scored@1" and json.loads(out)["rows"] == 150

    code, out, err = run("jobs", "cancel", job)
    assert code == 9 and f"job {job} has already succeeded; there is nothing to cancel" in one_line_error(err)
    code, out, err = run("jobs", "retry", job)
    assert code == 9 and "is succeeded, not failed or cancelled" in one_line_error(err)


def test_foreground_kernel_and_cancel_retry(run, ws, tmp_path, intents_csv, tiny_model_dir):
    ws.import_dataset(intents_csv, "intents")
    job = ws.submit_train(tiny_spec(tiny_model_dir), cpus=1, start_kernel=False)
    code, out, _ = run("jobs", "cancel", str(job.id), "--json")
    assert code == 0 and json.loads(out)["state"] == "cancelled"
    code, out, _ = run("jobs", "retry", str(job.id), "--json")  # starts a kernel on demand
    assert code == 0 and json.loads(out)["state"] == "queued"
    ws.wait_job(job.id, timeout=120)
    code, out, _ = run("kernel", "status", "--json")
    assert code == 0 and json.loads(out)["queued"] == 0
    queued = ws.submit_eval("tiny", "intents", start_kernel=False)
    while ws.kernel_pid() is not None:  # the on-demand kernel leaves once idle
        import time

        time.sleep(0.2)
    code, _, err = run("kernel", "start", "--cpus", "1", "--until-idle")
    assert code == 0 and "1 cpus" in " ".join(err.split())  # Rich may wrap a long workspace path
    assert ws.job(queued.id).result["metrics"]["num_examples"] == 150


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["jobs", "show", "99"], 3, "job 99 not found"),
        (["jobs", "cancel", "99"], 3, "job 99 not found"),
        (["jobs", "logs", "99"], 3, "job 99 not found"),
        (["jobs", "retry", "99"], 3, "job 99 not found"),
        (["jobs", "show", "abc"], 2, "invalid job id 'abc'"),
        (["jobs", "list", "--state", "done"], 2, "unknown job state 'done'"),
        (["predict", "ghost", "--data", "d"], 3, "model 'ghost' not found"),
    ],
)
def test_job_bad_input(run, args, code, message):
    run("init")
    rc, _, err = run(*args)
    assert rc == code and message in one_line_error(err)
