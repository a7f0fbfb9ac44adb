"""Schedule operations: add, list, show, pause, resume, remove; the job is checked when
added (bad input: one clear line, nothing stored); a firing submits the job as a manual
submission would, acting as the schedule's creator; `adapt --on-drift` adapts only on drift."""

import pytest

from llmos.core.errors import LlmosError, NotFoundError, UsageError
from llmos.kernel import schedules as kernel_schedules
from llmos.ops import schedules as ops
from llmos.serve.errors import Forbidden
from tests.ops.conftest import as_role

EVAL = ["eval", "tiny@1", "--data", "intents@1"]


def test_add_list_show_pause_resume_remove(filled):
    info = filled.add_schedule("nightly-eval", EVAL, every="1h", start_kernel=False)
    assert (info.kind, info.every, info.cron, info.paused, info.runs) == ("eval", 3600, None, False, 0)
    assert info.command == "eval tiny@1 --data intents@1"
    assert info.payload == {"model": "tiny@1", "data": "intents@1", "cpus": 1}
    assert info.created_by.startswith("local:")
    assert (info.next_run_at - info.created_at).total_seconds() == pytest.approx(3600, abs=1)
    cron = filled.add_schedule("five", EVAL, cron="*/5  * * * *", start_kernel=False)
    assert cron.cron == "*/5 * * * *" and cron.next_run_at.minute % 5 == 0 and cron.next_run_at.second == 0
    assert [s.name for s in filled.schedules()] == ["five", "nightly-eval"]
    assert filled.pause_schedule("five").paused
    resumed = filled.resume_schedule("five", start_kernel=False)
    assert not resumed.paused and resumed.next_run_at == cron.next_run_at
    assert filled.remove_schedule("five").name == "five"
    assert [s.name for s in filled.schedules()] == ["nightly-eval"]
    with pytest.raises(NotFoundError, match="schedule 'five' not found"):
        filled.schedule("five")
    actions = [e.action for e in filled.audit_events(limit=20)]
    assert {"schedule.add", "schedule.pause", "schedule.resume", "schedule.remove"} <= set(actions)


def test_a_firing_submits_the_job_as_its_creator(filled):
    ctx = as_role(filled, "developer")
    ops.add_schedule(ctx, "ev", EVAL, every="10s", start_kernel=False)
    row = kernel_schedules.get(filled.store, "ev")
    job_id, outcome = ops.fire(filled.store, row)
    job = filled.job(job_id)
    assert outcome == f"queued job {job_id}"
    assert (job.kind, job.state, job.payload["submitted_by"]) == ("eval", "queued", "someone-developer")


@pytest.mark.parametrize(
    ("name", "job", "when", "error", "message"),
    [
        ("a", ["bogus", "x"], {"every": "1h"}, UsageError, "unknown job 'bogus' for a schedule: use one of"),
        ("a", [], {"every": "1h"}, UsageError, "a schedule needs a job after `--`"),
        ("a", "eval 'tiny@1", {"every": "1h"}, UsageError, "No closing quotation"),
        ("a", EVAL, {"every": "1h", "cron": "* * * * *"}, UsageError, "exactly one of --every and --cron"),
        ("a", EVAL, {}, UsageError, "exactly one of --every and --cron"),
        ("a", EVAL, {"cron": "every monday"}, UsageError, "invalid --cron 'every monday'"),
        ("a", EVAL, {"every": "0"}, UsageError, "invalid --every '0'"),
        ("a", EVAL, {"every": 0}, UsageError, "invalid --every 0"),
        ("a", ["eval", "tiny@1"], {"every": "1h"}, UsageError, "required: --data"),
        ("a", ["adapt", "x", "--bogus"], {"every": "1h"}, UsageError, "unrecognized arguments: --bogus"),
        ("a", ["adapt", "ghost", "--on-drift"], {"every": "1h"}, NotFoundError, "ghost"),
        ("a", ["eval", "nope@1", "--data", "intents@1"], {"every": "1h"}, NotFoundError, "nope"),
        ("bad name!", EVAL, {"every": "1h"}, UsageError, "invalid schedule name"),
    ],
)
def test_bad_input_is_one_clear_line_and_stores_nothing(filled, name, job, when, error, message):
    with pytest.raises(error) as caught:
        filled.add_schedule(name, job, start_kernel=False, **when)
    assert message in caught.value.message and "\n" not in caught.value.message
    assert filled.schedules() == []


def test_a_duplicate_name_is_refused_and_the_first_kept(filled):
    filled.add_schedule("dup", EVAL, every="1h", start_kernel=False)
    with pytest.raises(UsageError, match="schedule 'dup' already exists"):
        filled.add_schedule("dup", ["eval", "tiny@1", "--data", "intents@1", "--cpus", "2"], every="5m")
    [kept] = filled.schedules()
    assert kept.every == 3600 and kept.payload["cpus"] == 1


def test_a_viewer_may_list_but_not_add_pause_or_remove(filled):
    filled.add_schedule("ev", EVAL, every="1h", start_kernel=False)
    viewer = as_role(filled, "viewer")
    assert [s.name for s in ops.schedules(viewer)] == ["ev"] and ops.schedule(viewer, "ev").name == "ev"
    for call in (
        lambda: ops.add_schedule(viewer, "x", EVAL, every="1h", start_kernel=False),
        lambda: ops.pause_schedule(viewer, "ev"),
        lambda: ops.remove_schedule(viewer, "ev"),
    ):
        with pytest.raises(Forbidden, match="'train' permission"):
            call()
    assert not filled.schedule("ev").paused


def test_on_drift_adapt_is_skipped_while_the_monitor_sees_no_drift(filled):
    from llmos.store.schema import Deployment

    with filled.store.transaction() as session:  # the fake model has no weights to load
        session.add(Deployment(name="support", model="tiny@1", kind="classifier", options={}))
    words = ["adapt", "support", "--on-drift", "--epochs", "1"]
    filled.add_schedule("drift", words, every="1h", start_kernel=False)
    row = kernel_schedules.get(filled.store, "drift")
    assert row.payload == {"deployment": "support", "on_drift": True, "window": 200, "cpus": 1, "epochs": 1}
    try:
        job_id, outcome = ops.fire(filled.store, row)
    except LlmosError as exc:  # pragma: no cover - shown if the monitor cannot run here
        pytest.fail(exc.message)
    assert (job_id, outcome) == (None, "skipped: no full window yet")
    assert filled.jobs() == []
