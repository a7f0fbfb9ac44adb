"""Running a scheduler in a test: in a thread of the test process, with real workers."""

import threading
import time

from llmos.kernel.resources import Free
from llmos.kernel.scheduler import Scheduler


def start_scheduler(store, cpus=1):
    """A scheduler over `cpus` that returns once nothing is queued or running."""
    scheduler = Scheduler(store, Free(cpus=cpus, gpus=0, memory_mb=1 << 20), poll_s=0.05)
    thread = threading.Thread(target=scheduler.run, kwargs={"until_idle": True}, daemon=True)
    thread.start()
    return thread


def run_until_idle(store, cpus, timeout=90):
    thread = start_scheduler(store, cpus)
    thread.join(timeout)
    assert not thread.is_alive(), "scheduler did not finish"


def wait_for(condition, timeout=120, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def submit_probe(store, schedule):
    """A schedule submitter for tests: a `probe` job that returns at once."""
    from llmos.kernel import jobs
    from llmos.kernel.probe import PROBE_HANDLER

    job = jobs.submit(store, kind="probe", name=schedule.name, handler=PROBE_HANDLER, payload={"seconds": 0})
    return job.id, f"queued job {job.id}"
