"""The worker process that runs one attempt of one job: `python -m llmos.kernel.worker`.

The scheduler starts it with the job's thread budget in OMP_NUM_THREADS (and the
worker sets torch's thread count to the same number once torch is loaded): two
workers each using every core of a small machine slow each other 10-100x. A heartbeat
thread records liveness and progress every second and turns a cancel request into
`Cancelled` in the main thread. The outcome is always recorded: succeeded (by the
handler's registering transaction or here), cancelled, failed, or, for crashes worth
retrying, queued again while attempts are left.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any

from llmos.core.errors import JobError, LlmosError
from llmos.core.settings import Settings
from llmos.kernel import jobs
from llmos.kernel.context import Cancelled, JobContext, JobProgress
from llmos.store.audit import acting_as, local_actor
from llmos.store.db import Store
from llmos.store.scope import all_projects, in_project

HEARTBEAT_SECONDS = 1.0
Handler = Callable[[JobContext], dict[str, Any]]


def resolve_handler(path: str) -> Handler:
    module_name, _, func = path.partition(":")
    try:
        module = importlib.import_module(module_name)
        handler: Handler = getattr(module, func)
    except (ImportError, AttributeError) as exc:
        raise JobError(f"job handler {path!r} cannot be loaded: {exc}") from exc
    return handler


def limit_threads(threads: int) -> None:
    """Hold torch (and the BLAS/OpenMP pools under it) to the job's cpus."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)


class Heartbeat(threading.Thread):
    def __init__(self, store: Store, job_id: int, progress: JobProgress, interval: float) -> None:
        super().__init__(name="llmos-heartbeat", daemon=True)
        self.store, self.job_id, self.progress, self.interval = store, job_id, progress, interval
        self.stopped = threading.Event()
        self.cancel_sent = False

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                cancel = jobs.heartbeat(self.store, self.job_id, self.progress.snapshot())
            except LlmosError as exc:  # a busy database: try again at the next beat
                print(f"heartbeat failed: {exc}", flush=True)
                continue
            if cancel and not self.cancel_sent:
                self.cancel_sent = True
                os.kill(os.getpid(), signal.SIGTERM)  # -> Cancelled in the main thread

    def stop(self) -> None:
        self.stopped.set()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Cancelled()


def run_job(store: Store, job_id: int, heartbeat_s: float = HEARTBEAT_SECONDS) -> str:
    """Run the job's current attempt in this process, in the job's project; return the
    state it ended in."""
    with all_projects():
        project = jobs.get_job(store, job_id).project
    with in_project(project):
        return _run_job(store, job_id, heartbeat_s)


def _run_job(store: Store, job_id: int, heartbeat_s: float) -> str:
    job = jobs.get_job(store, job_id)
    threads = job.threads or job.cpus
    limit_threads(threads)
    work_dir = jobs.job_dir(store.settings, job_id)
    work_dir.mkdir(parents=True, exist_ok=True)
    ctx = JobContext(
        store=store,
        job_id=job_id,
        kind=job.kind,
        name=job.name,
        payload=job.payload,
        attempt=job.attempts,
        max_attempts=job.max_attempts,
        threads=threads,
        work_dir=work_dir,
    )
    beat = Heartbeat(store, job_id, ctx.progress, heartbeat_s)
    signal.signal(signal.SIGTERM, _on_sigterm)
    beat.start()
    try:
        handler = resolve_handler(job.handler)
        limit_threads(threads)  # the handler's module may have loaded torch
        ctx.progress.log(f"{job.kind} job {job_id} ({job.name}), attempt {job.attempts}, {threads} thread(s)")
        with acting_as(str(job.payload.get("submitted_by") or local_actor())):
            result = handler(ctx)
        # the last line before the state changes: whoever sees the job finished (`jobs logs
        # -f`) then finds every line in the log
        ctx.progress.log(f"succeeded: {result}")
        if not ctx.finished:
            jobs.finish(store, job_id, result, ctx.progress.snapshot())
        return "succeeded"
    except Cancelled:
        if not jobs.mark_cancelled(store, job_id, "cancelled while running"):
            return jobs.get_job(store, job_id).state  # it had finished a moment before
        ctx.progress.log("cancelled")
        return "cancelled"
    except JobError as exc:
        if jobs.get_job(store, job_id).cancel_requested:
            jobs.mark_cancelled(store, job_id, "cancelled while running")
            ctx.progress.log("cancelled")
            return "cancelled"
        ctx.progress.log(f"failed: {exc.message}")
        return jobs.fail(store, job_id, exc.message, retryable=False)
    except LlmosError as exc:  # the user's input is wrong: another attempt would fail the same way
        ctx.progress.log(f"failed: {exc.message}")
        return jobs.fail(store, job_id, exc.message, retryable=False)
    except Exception as exc:
        traceback.print_exc()
        message = f"{type(exc).__name__}: {exc}"
        state = jobs.fail(store, job_id, message, retryable=True)
        ctx.progress.log(f"attempt {job.attempts} crashed ({message}); job is now {state}")
        return state
    finally:
        beat.stop()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmos-worker", description="Run one attempt of one llmos job.")
    parser.add_argument("--home", required=True)
    parser.add_argument("job_id", type=int)
    args = parser.parse_args(argv)
    store = Store(Settings.resolve(args.home))
    state = run_job(store, args.job_id)
    return 0 if state == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
