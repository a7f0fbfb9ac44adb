"""`llmos.ops.jobs`: submission checks, listing, cancel/retry, permissions, and following a
job's events to its end (with a real scheduler and worker process)."""

from __future__ import annotations

import pytest

from llmos.core.errors import JobError, NotFoundError, SpecError
from llmos.ops import jobs as ops
from llmos.ops.context import Actor, Context
from llmos.serve.errors import Forbidden
from tests.conftest import tiny_spec
from tests.kernel.helpers import run_until_idle

FAST = {"epochs": 1, "batch_size": 16, "lr": 3e-3, "head_lr": 1e-2, "seed": 7}


@pytest.fixture
def ctx(ws, intents_csv):
    ws.import_dataset(intents_csv, "intents")
    return ws.context


def test_submit_list_cancel_retry(ctx, tiny_model_dir):
    job = ops.submit_train(ctx, tiny_spec(tiny_model_dir), cpus=1, priority=4, start_kernel=False)
    assert (job.kind, job.name, job.state, job.priority, job.resources.cpus) == (
        "train",
        "tiny",
        "queued",
        4,
        1,
    )
    assert job.payload["spec"]["name"] == "tiny" and not job.finished
    assert [j.id for j in ops.jobs(ctx)] == [job.id] and ops.jobs(ctx, "running") == []
    assert ops.job(ctx, job.id).state == "queued"

    cancelled = ops.cancel_job(ctx, job.id)
    assert cancelled.state == "cancelled" and cancelled.error == "cancelled before it started"
    with pytest.raises(JobError, match=f"job {job.id} has already cancelled; there is nothing to cancel"):
        ops.cancel_job(ctx, job.id)
    again = ops.retry_job(ctx, job.id, start_kernel=False)
    assert again.state == "queued" and again.attempts == 0
    with pytest.raises(JobError, match="is queued, not failed or cancelled"):
        ops.retry_job(ctx, job.id, start_kernel=False)
    with pytest.raises(NotFoundError, match="job 99 not found"):
        ops.job(ctx, 99)
    with pytest.raises(NotFoundError, match="job 99 not found"):
        ops.job_events(ctx, 99)  # at once, not at the first event
    status = ops.kernel_status(ctx)
    assert (status.running, status.queued, status.active) == (False, 1, 0)


def test_a_bad_spec_lists_every_problem_and_queues_nothing(ctx, tiny_model_dir):
    spec = tiny_spec(tiny_model_dir, train={"epochs": 0, "batch_size": -1, "lrr": 1})
    with pytest.raises(SpecError) as caught:
        ops.submit_train(ctx, spec, start_kernel=False)
    assert {p.split(":")[0] for p in caught.value.problems} == {
        "train.epochs",
        "train.batch_size",
        "train.lrr",
    }
    yaml_text = "name: tiny\nmodel: x\n"  # YAML text works as well as a mapping
    with pytest.raises(SpecError, match="data: required"):
        ops.submit_train(ctx, yaml_text, start_kernel=False)
    with pytest.raises(SpecError, match="a spec is a mapping"):
        ops.submit_train(ctx, "/etc/passwd", start_kernel=False)  # never read as a path on the server
    with pytest.raises(NotFoundError, match="dataset 'ghost' not found"):
        ops.submit_train(ctx, tiny_spec(tiny_model_dir, data={"train": "ghost"}), start_kernel=False)
    assert ops.jobs(ctx) == []


def test_a_viewer_may_read_jobs_but_not_submit_or_cancel(ctx, tiny_model_dir):
    viewer = Context(ctx.store, Actor("viv", "viewer"))
    with pytest.raises(Forbidden, match=r"a viewer may not do this .*'train'"):
        ops.submit_train(viewer, tiny_spec(tiny_model_dir), start_kernel=False)
    assert ops.jobs(viewer) == []
    job = ops.submit_train(ctx, tiny_spec(tiny_model_dir), cpus=1, start_kernel=False)
    with pytest.raises(Forbidden, match="'jobs:write'"):
        ops.cancel_job(viewer, job.id)
    assert ops.job(viewer, job.id).state == "queued"


def test_events_follow_a_training_job_to_its_end_and_resume_without_repeats(ctx, tiny_model_dir):
    job = ops.submit_train(ctx, tiny_spec(tiny_model_dir, train=FAST), cpus=1, start_kernel=False)
    run_until_idle(ctx.store, 1, timeout=180)
    events = list(ops.job_events(ctx, job.id, poll=0.05))
    kinds = [e.type for e in events]
    assert kinds[0] == "state" and kinds[-1] == "end" and kinds.count("end") == 1
    end = events[-1]
    assert end.state == "succeeded" and end.result["model"] == "tiny@1"
    assert end.info.result["metrics"]["num_examples"] == 30
    lines = [e.line for e in events if e.type == "log"]
    assert any("attempt 1 of 2 started" in line for line in lines)
    assert any(line.endswith("succeeded: " + str(end.result)) for line in lines)
    # the ids are log offsets: resuming after one repeats nothing and misses nothing
    logs = [e for e in events if e.type == "log"]
    middle = logs[len(logs) // 2]
    resumed = [e.line for e in ops.job_events(ctx, job.id, after=middle.id) if e.type == "log"]
    assert resumed == lines[len(logs) // 2 + 1 :]
    assert logs[-1].id == len(ops.job_log(ctx, job.id).log.encode())


def test_follow_events_drives_a_progress_bar(ctx, tiny_model_dir):
    job = ops.submit_train(ctx, tiny_spec(tiny_model_dir, train=FAST), cpus=1, start_kernel=False)

    class Recorder:
        def __init__(self):
            self.calls = []

        def start(self, task, total):
            self.calls.append(("start", task, total))

        def advance(self, n=1, **fields):
            self.calls.append(("advance", n))

        def log(self, message):
            self.calls.append(("log", message))

        def finish(self):
            self.calls.append(("finish",))

    import threading

    from tests.kernel.helpers import start_scheduler

    recorder = Recorder()
    thread = start_scheduler(ctx.store)
    done = ops.follow_events(ops.job_events(ctx, job.id, poll=0.05), recorder)
    thread.join(60)
    assert isinstance(thread, threading.Thread) and done.state == "succeeded"
    assert recorder.calls[-1] == ("finish",) and any(c[0] == "log" for c in recorder.calls)
    # the heartbeat stores progress once a second: a tiny run may finish between two beats
    starts = [c for c in recorder.calls if c[0] == "start"]
    assert all(isinstance(c[1], str) for c in starts)
