"""Schedules in the kernel: a 10 s schedule fires on time for a minute, catches up once
after 35 s of downtime, each occurrence is fired once however many schedulers race, and
a kernel with an active schedule does not stop for being idle."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from llmos.core.errors import UsageError
from llmos.core.settings import Settings
from llmos.core.util import utcnow
from llmos.kernel import schedules
from llmos.kernel.resources import Free
from llmos.kernel.scheduler import Scheduler
from llmos.store import Store
from llmos.store.schema import Job
from tests.kernel.helpers import wait_for


@pytest.fixture
def store(home, monkeypatch):
    monkeypatch.setitem(schedules.SUBMITTERS, "probe", "tests.kernel.helpers:submit_probe")
    return Store(Settings.resolve(home))


def probe_jobs(store):
    with store.read() as session:
        return list(session.scalars(select(Job).where(Job.kind == "probe").order_by(Job.id)))


def start(store, zygote=True, **run):
    scheduler = Scheduler(store, Free(cpus=1, gpus=0, memory_mb=1 << 20), poll_s=0.2, use_zygote=zygote)
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, kwargs={"stop": stop, **run}, daemon=True)
    thread.start()
    return stop, thread


@pytest.mark.default_backend_only  # 100 s of waiting; the claim's queries run on both backends below
def test_every_10s_fires_on_time_for_a_minute_then_catches_up_once_after_35s_down(store):
    row = schedules.add(store, "tick", "probe", {}, every_s=10, command="probe")
    first_due = row.next_run_at
    stop, thread = start(store)
    try:
        wait_for(lambda: len(probe_jobs(store)) == 6, timeout=65, what="six firings")
    finally:
        stop.set()
        thread.join(10)
    fired = [j.created_at for j in probe_jobs(store)]
    late = [(at - (first_due + timedelta(seconds=10 * k))).total_seconds() for k, at in enumerate(fired)]
    print(f"seconds late: {late}")
    assert all(0 <= s < 1.0 for s in late), late  # each within a second of its due time, never early

    # the kernel is down for 35 s: the occurrences at +60 s, +70 s and +80 s (or so) pass
    time.sleep(35)
    assert len(probe_jobs(store)) == 6
    stop, thread = start(store)
    try:
        wait_for(lambda: len(probe_jobs(store)) >= 7, timeout=3, what="the catch-up run")
        time.sleep(1.5)
    finally:
        stop.set()
        thread.join(10)
    catch_up, *after = probe_jobs(store)[6:]
    # the schedule's next occurrence on its grid after the catch-up run: the occurrences
    # missed while down (about +60, +70 and +80 s) gave one run, not three; a run at that
    # next occurrence itself may follow, when it fell inside the 1.5 s wait
    behind = (catch_up.created_at - first_due).total_seconds()
    next_due = first_due + timedelta(seconds=10 * (behind // 10 + 1))
    assert [j.created_at for j in after if j.created_at < next_due] == []
    assert len(after) <= 1
    row = schedules.get(store, "tick")
    assert row.runs == 7 + len(after) and row.last_job_id == probe_jobs(store)[-1].id
    assert row.last_outcome == f"queued job {row.last_job_id}"
    # back on the schedule's grid: the next occurrence is a multiple of 10 s from the first
    assert (row.next_run_at - first_due).total_seconds() % 10 == pytest.approx(0, abs=1e-6)
    assert row.next_run_at >= next_due
    assert {j.payload["seconds"] for j in probe_jobs(store)} == {0}


def test_an_occurrence_is_fired_once_however_many_schedulers_race(store):
    schedules.add(store, "race", "probe", {}, every_s=3600)
    with store.transaction() as session:  # due now
        row = session.scalar(select(schedules.Schedule).where(schedules.Schedule.name == "race"))
        row.next_run_at = utcnow() - timedelta(seconds=1)
    with ThreadPoolExecutor(6) as pool:
        fired = list(pool.map(lambda _: schedules.fire_due(store), range(6)))
    assert sum(len(f) for f in fired) == 1
    assert len(probe_jobs(store)) == 1
    assert schedules.get(store, "race").next_run_at > utcnow() + timedelta(seconds=3500)


def test_a_kernel_with_an_active_schedule_stays_up_and_stops_once_it_is_paused(store):
    schedules.add(store, "hourly", "probe", {}, every_s=3600)
    stop, thread = start(store, zygote=False, idle_exit_s=0.3)
    try:
        time.sleep(1.5)
        assert thread.is_alive()  # idle, but a schedule will fall due
        schedules.set_paused(store, "hourly", True)
        thread.join(30)
        assert not thread.is_alive()
    finally:
        stop.set()
    assert probe_jobs(store) == []


def test_until_idle_drains_the_queue_and_stops_despite_an_active_schedule(store):
    schedules.add(store, "hourly", "probe", {}, every_s=3600)
    stop, thread = start(store, zygote=False, until_idle=True)
    thread.join(30)
    assert not thread.is_alive()
    stop.set()


def test_a_failing_submission_is_recorded_and_the_schedule_carries_on(store, monkeypatch):
    monkeypatch.setitem(schedules.SUBMITTERS, "probe", "tests.kernel.test_schedules:refuse")
    schedules.add(store, "bad", "probe", {}, every_s=60)
    now = utcnow() + timedelta(seconds=61)
    [(_row, job_id, outcome)] = schedules.fire_due(store, now)
    assert job_id is None and outcome == "failed: no new feedback since the last adapt"
    after = schedules.get(store, "bad")
    assert after.last_outcome == outcome and after.runs == 1 and after.next_run_at > now


def refuse(store, schedule):
    raise UsageError("no new feedback since the last adapt")


def test_next_run_stays_on_the_grid_and_cron_gives_the_next_time():
    anchor = datetime(2026, 1, 1, 12, 0, 0)
    s = lambda n: anchor + timedelta(seconds=n)  # noqa: E731
    assert schedules.next_run(10, None, s(0.3), anchor) == s(10)
    assert schedules.next_run(10, None, s(35), anchor) == s(40)  # 35 s late: the next one after now
    assert schedules.next_run(None, "*/5 * * * *", datetime(2026, 1, 1, 12, 3)) == datetime(2026, 1, 1, 12, 5)
    assert schedules.parse_every("1h") == 3600 and schedules.parse_every("90") == 90
    for bad in ("0", "0s", "-1", "1w", "soon", "", "367d", "9" * 30):
        with pytest.raises(UsageError, match="invalid --every"):
            schedules.parse_every(bad)
    for bad in ("* * *", "61 * * * *", "bad cron", "* * * * * *"):
        with pytest.raises(UsageError, match="invalid --cron"):
            schedules.check_cron(bad)
