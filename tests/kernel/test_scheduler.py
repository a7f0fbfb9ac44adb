"""The scheduler with real worker processes running `probe` jobs: admission by priority
then age within the cpus it is given, threads that fit the cpus, cancellation, requeue
of dead workers, and the job operations' bad input."""

import os
import signal
import time
from pathlib import Path

import pytest

from llmos.core.errors import JobError, NotFoundError, UsageError
from llmos.core.settings import Settings
from llmos.kernel import jobs
from llmos.kernel.probe import PROBE_HANDLER
from llmos.kernel.resources import Resources
from llmos.kernel.scheduler import Scheduler
from llmos.store import Store
from tests.kernel.helpers import run_until_idle, start_scheduler, wait_for


@pytest.fixture
def store(home):
    return Store(Settings.resolve(home))


def probe(store, seconds, priority=0, cpus=1, max_attempts=1, name="probe"):
    return jobs.submit(
        store,
        kind="probe",
        name=name,
        handler=PROBE_HANDLER,
        payload={"seconds": seconds},
        resources=Resources(cpus=cpus),
        priority=priority,
        max_attempts=max_attempts,
    )


def process_running(pid):
    """True while `pid` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_one_cpu_runs_jobs_one_at_a_time_in_priority_order(store):
    low = probe(store, 1.0, priority=1, name="low")
    high = probe(store, 1.0, priority=9, name="high")
    mid = probe(store, 1.0, priority=5, name="mid")
    run_until_idle(store, cpus=1)
    done = [jobs.get_job(store, j.id) for j in (high, mid, low)]
    assert [j.state for j in done] == ["succeeded"] * 3, [j.error for j in done]
    spans = [(j.result["started"], j.result["ended"]) for j in done]
    assert spans[0][1] <= spans[1][0] and spans[1][1] <= spans[2][0], spans  # in order, never together
    assert all(j.result["threads"] == 1 for j in done)


def test_two_cpus_run_the_two_highest_priorities_at_once(store):
    low = probe(store, 1.5, priority=1, name="low")
    high = probe(store, 1.5, priority=9, name="high")
    mid = probe(store, 1.5, priority=5, name="mid")
    run_until_idle(store, cpus=2)
    h, m, lo = (jobs.get_job(store, j.id).result for j in (high, mid, low))
    assert max(h["started"], m["started"]) < min(h["ended"], m["ended"])  # ran together
    assert lo["started"] >= min(h["ended"], m["ended"])  # waited for a free cpu


def test_equal_priority_goes_by_age(store):
    older = probe(store, 0.2, name="older")
    newer = probe(store, 0.2, name="newer")
    run_until_idle(store, cpus=1)
    assert jobs.get_job(store, older.id).result["ended"] <= jobs.get_job(store, newer.id).result["started"]


def test_job_gets_threads_for_its_cpus_and_too_big_a_job_fails_with_the_reason(store):
    wide = probe(store, 0.1, cpus=2)
    huge = probe(store, 0.1, cpus=64)
    run_until_idle(store, cpus=2)
    assert jobs.get_job(store, wide.id).result["threads"] == 2
    refused = jobs.get_job(store, huge.id)
    assert refused.state == "failed" and "needs 64 cpus but this kernel has 2 cpus" in refused.error


def test_cancel_running_job_ends_process_frees_cpu_and_next_job_runs(store):
    long = probe(store, 120.0, priority=5, name="long")
    after = probe(store, 0.1, name="after")
    thread = start_scheduler(store)
    wait_for(lambda: jobs.get_job(store, long.id).progress.get("done", 0) >= 2, what="the job to run")
    pid = jobs.get_job(store, long.id).pid
    assert jobs.get_job(store, after.id).state == "queued"  # the only cpu is taken
    asked = time.monotonic()
    jobs.request_cancel(store, long.id)
    while process_running(pid):
        assert time.monotonic() - asked < 5, "worker still alive 5 s after cancel"
        time.sleep(0.05)
    thread.join(60)
    cancelled = jobs.get_job(store, long.id)
    assert cancelled.state == "cancelled" and cancelled.result is None
    assert jobs.get_job(store, after.id).state == "succeeded"
    with pytest.raises(JobError, match=f"job {long.id} has already cancelled"):
        jobs.request_cancel(store, long.id)


def test_killed_worker_is_requeued_and_the_retry_succeeds(store):
    job = probe(store, 4.0, max_attempts=2)
    thread = start_scheduler(store)
    wait_for(lambda: jobs.get_job(store, job.id).progress.get("done", 0) >= 1, what="the job to run")
    os.kill(jobs.get_job(store, job.id).pid, signal.SIGKILL)
    thread.join(90)
    done = jobs.get_job(store, job.id)
    assert done.state == "succeeded" and done.attempts == 2 and done.result["attempt"] == 2
    log = Path(done.log_path).read_text()
    assert "killed by SIGKILL on attempt 1; job is now queued" in log


def test_restarted_scheduler_requeues_a_job_whose_worker_is_gone(store):
    job = probe(store, 0.1, max_attempts=2)
    assert jobs.start(store, job.id, threads=1)  # a scheduler started it, then died with it
    jobs.set_pid(store, job.id, 2**22 + 1234)  # no such process
    run_until_idle(store, cpus=1)
    done = jobs.get_job(store, job.id)
    assert done.state == "succeeded" and done.attempts == 2


def test_bad_job_operations(store):
    with pytest.raises(NotFoundError, match="job 99 not found"):
        jobs.get_job(store, 99)
    with pytest.raises(NotFoundError, match="job 99 not found"):
        jobs.request_cancel(store, 99)
    with pytest.raises(UsageError, match="invalid job id 'abc'"):
        jobs.get_job(store, "abc")
    with pytest.raises(UsageError, match="cpus must be >= 1"):
        Resources(cpus=0)
    queued = probe(store, 0.1)
    with pytest.raises(JobError, match="is queued, not failed or cancelled"):
        jobs.retry(store, queued.id)
    assert jobs.request_cancel(store, queued.id).state == "cancelled"
    assert jobs.retry(store, queued.id).state == "queued"
    run_until_idle(store, cpus=1)
    with pytest.raises(JobError, match="has already succeeded; there is nothing to cancel"):
        jobs.request_cancel(store, queued.id)
    with pytest.raises(JobError, match="is succeeded, not failed or cancelled; submit it again"):
        jobs.retry(store, queued.id)


def test_one_scheduler_per_workspace(store):
    first = Scheduler(store)
    first.acquire()
    try:
        with pytest.raises(JobError, match="a kernel is already running"):
            Scheduler(store).acquire()
    finally:
        first.release()


def test_a_lock_held_for_an_instant_is_taken_once_free(store):
    """`kernel_pid` holds the lock for an instant to see whether a kernel runs; a kernel
    starting (or taking the lock back to stay for a job) at that instant waits for it
    rather than leaving with "a kernel is already running" and the job unserved."""
    import fcntl
    import threading

    from llmos.kernel.scheduler import LOCK_FILE

    path = store.settings.home / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    held = path.open("a+")
    fcntl.flock(held, fcntl.LOCK_EX)
    threading.Timer(0.1, held.close).start()  # a probe's instant, made long enough to see
    scheduler = Scheduler(store)
    scheduler.acquire()
    scheduler.release()


def test_a_kernel_leaving_does_not_count_as_one_starting(home):
    """A kernel that took the lock and let it go is leaving (idle), even within the spawn
    record's grace period: a job queued now gets a kernel of its own, instead of waiting
    forever for the one that is on its way out (seen in CI as a remote `eval` that hung)."""
    import subprocess
    import sys

    from llmos.kernel.scheduler import LOCK_FILE, SPAWN_FILE, ensure_kernel, kernel_pid

    settings = Settings.resolve(home)
    settings.home.mkdir(parents=True, exist_ok=True)
    leaving = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    started = None
    try:
        (settings.home / LOCK_FILE).write_text(str(leaving.pid))  # it held the lock, now free
        (settings.home / SPAWN_FILE).write_text(f"{time.time():.3f} {leaving.pid}")
        started = ensure_kernel(settings, idle_exit_s=0.5)
        assert started != leaving.pid
        wait_for(lambda: kernel_pid(settings) == started, timeout=30, what="the new kernel")
    finally:
        leaving.kill()
        leaving.wait()
        if started is not None:
            wait_for(lambda: kernel_pid(settings) is None, timeout=30, what="the new kernel's idle exit")
