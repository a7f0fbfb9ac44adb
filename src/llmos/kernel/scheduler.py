"""The scheduler: admits queued jobs by priority then age as cpus, gpus and memory allow,
runs each in its own worker process, and watches them.

Everything it knows lives in the store: the queue is the jobs table, and the resources in
use are the requests of the jobs in state `running`, so a restarted scheduler picks up
where the last one stopped. Workers run in their own session and outlive a scheduler
that dies; the next one keeps counting them and watches their heartbeats. A running job
whose heartbeat stops (its machine or worker died) is requeued while it has attempts
left. Cancelling ends the worker with SIGTERM, then SIGKILL after a grace period.

One scheduler per workspace folder, held by an advisory lock on `kernel.lock`. Over a
shared PostgreSQL database, schedulers on many hosts (each with its own folder) serve one
queue: a claim is a conditional UPDATE (`jobs.start`, `jobs.claim_next` with `FOR UPDATE
SKIP LOCKED`), so a job runs once; each host counts its resources and watches its worker
processes only for the jobs it claimed (`jobs.host`), and requeues another host's job only
when that job's heartbeat stopped.

Each pass also fires the schedules that are due (`kernel.schedules`): the jobs they submit
join the queue like any other. While a schedule is active the kernel does not stop for
being idle.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from llmos.core.errors import JobError
from llmos.core.settings import Settings
from llmos.kernel import jobs, schedules
from llmos.kernel.quotas import ProjectQuotas
from llmos.kernel.resources import Free, machine_capacity
from llmos.store.db import Store
from llmos.store.schema import Job
from llmos.store.scope import all_projects

LOCK_FILE = "kernel.lock"
ACQUIRE_WAIT_S = 0.5  # how long a busy kernel lock is tried again (see Scheduler.acquire)
KERNEL_LOG = "kernel.log"
ENV_IDLE_EXIT = "LLMOS_KERNEL_IDLE_EXIT"
KERNEL_ARGV = [sys.executable, "-m", "llmos.kernel.scheduler"]


def _stamp() -> str:
    return time.strftime("%H:%M:%S")


def append_log(job: Job, message: str) -> None:
    """A kernel line in the job's log, beside what its worker prints."""
    path = Path(job.log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(f"{_stamp()} kernel: {message}\n")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal(pid: int | None, sig: int) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _kill_group(pid: int | None) -> None:
    """SIGKILL a worker and whatever it started (a local Ray, for one): each worker leads
    its own process group."""
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


@dataclass
class Scheduler:
    store: Store
    capacity: Free = field(default_factory=machine_capacity)
    poll_s: float = 0.2
    heartbeat_timeout_s: float = 30.0
    cancel_grace_s: float = 3.0
    python: str = sys.executable
    children: dict[int, Any] = field(default_factory=dict)  # Popen or ZygoteChild
    _cancel_seen: dict[int, float] = field(default_factory=dict)
    # workers forked from a warm process (`kernel.zygote`); LLMOS_KERNEL_ZYGOTE=0 starts
    # each as a new process instead
    use_zygote: bool = field(default_factory=lambda: os.environ.get("LLMOS_KERNEL_ZYGOTE", "1") != "0")
    _zygote: Any = None
    _lock: IO[str] | None = None
    host: str = field(default_factory=jobs.host_id)

    # --- the single-scheduler lock ------------------------------------------------------

    def acquire(self, wait_s: float = ACQUIRE_WAIT_S) -> None:
        """Take the workspace's kernel lock. `kernel_pid` (anyone asking whether a kernel
        runs) holds it for an instant to find out, so a lock that is busy is tried again for
        `wait_s`: only a kernel holds it longer."""
        path = self.store.settings.home / LOCK_FILE
        handle = path.open("a+")
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise JobError(
                    f"a kernel is already running for {self.store.settings.home} (pid {holder})"
                ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock = handle

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # --- one pass -----------------------------------------------------------------------

    def step(self) -> None:
        with all_projects():  # the kernel serves every project's jobs
            self._reap()
            self._enforce_cancels()
            self._recover_stale()
            self._fire_schedules()
            self._admit()

    def _fire_schedules(self) -> None:
        """Submit the jobs of due schedules (each occurrence claimed once across
        schedulers), before admitting, so a fired job can start in the same pass."""
        for row, _job_id, outcome in schedules.fire_due(self.store):
            print(f"{_stamp()} schedule {row.name}: {outcome}", flush=True)

    def free(self) -> Free:
        free = Free(self.capacity.cpus, self.capacity.gpus, self.capacity.memory_mb)
        for job in jobs.running_jobs(self.store, self.host):
            free.take(jobs.resources_of(job))
        return free

    def _admit(self) -> None:
        free = self.free()
        quotas = ProjectQuotas(self.store)
        for job in jobs.queued_in_order(self.store):
            refusal = quotas.refusal(job)
            if refusal is not None:
                if jobs.start(self.store, job.id, threads=0, host=self.host):
                    jobs.fail(self.store, job.id, refusal, retryable=False)
                    append_log(job, f"refused: {refusal}")
                continue
            if not quotas.admits(job):
                continue  # its project is at its concurrent-jobs quota: it waits, others go on
            wants = jobs.resources_of(job)
            whole = Free(self.capacity.cpus, self.capacity.gpus, self.capacity.memory_mb)
            if not wants.fits_in(whole):
                self._refuse(job, whole)
                continue
            if not wants.fits_in(free):
                break  # strict order: a big job at the head is not starved by smaller ones
            if self._launch(job):
                free.take(wants)
                quotas.started(job)

    def _refuse(self, job: Job, whole: Free) -> None:
        reason = (
            f"needs {jobs.resources_of(job).describe()} but this kernel has {whole.cpus} cpus, "
            f"{whole.gpus} gpus and {whole.memory_mb} MB"
        )
        if jobs.start(self.store, job.id, threads=0, host=self.host):
            jobs.fail(self.store, job.id, reason, retryable=False)
            append_log(job, f"refused: {reason}")

    def _launch(self, job: Job) -> bool:
        threads = job.cpus
        if not jobs.start(self.store, job.id, threads, host=self.host):
            return False  # cancelled meanwhile, or claimed by another host's scheduler
        log = Path(job.log_path)
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        argv = [
            self.python,
            "-m",
            "llmos.kernel.worker",
            "--home",
            str(self.store.settings.home),
            str(job.id),
        ]
        proc = self._fork(job, log, env)
        try:
            if proc is None:
                with log.open("ab") as out:
                    proc = subprocess.Popen(
                        argv,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        env=env,
                        start_new_session=True,  # Ctrl-C on a foreground kernel does not kill its jobs
                    )
        except OSError as exc:
            jobs.fail(self.store, job.id, f"cannot start a worker process: {exc}", retryable=False)
            return False
        self.children[job.id] = proc
        jobs.set_pid(self.store, job.id, proc.pid)
        append_log(
            job,
            f"attempt {job.attempts + 1} of {job.max_attempts} started as pid {proc.pid} "
            f"with {jobs.resources_of(job).describe()}, {threads} thread(s)",
        )
        return True

    def _fork(self, job: Job, log: Path, env: dict[str, str]) -> Any:
        """A worker forked from the warm zygote, or None to start a new process instead
        (zygote off, another interpreter asked for, or the zygote unavailable)."""
        if not self.use_zygote or self.python != sys.executable:
            return None
        from llmos.kernel.zygote import Zygote

        try:
            if self._zygote is None or not self._zygote.alive():
                self._zygote = Zygote(self.python)
            return self._zygote.spawn(str(self.store.settings.home), job.id, str(log), env)
        except OSError as exc:
            append_log(job, f"worker zygote unavailable ({exc}); starting a new process")
            self.use_zygote = False
            return None

    def close_zygote(self) -> None:
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None

    def _reap(self) -> None:
        for job_id, proc in list(self.children.items()):
            code = proc.poll()
            if code is None:
                continue
            del self.children[job_id]
            self._cancel_seen.pop(job_id, None)
            _kill_group(proc.pid)  # nothing the worker started outlives it
            job = jobs.get_job(self.store, job_id)
            if job.state != "running":
                continue  # the worker recorded its outcome
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
            if job.cancel_requested:
                jobs.mark_cancelled(self.store, job_id, f"cancelled; worker {how}")
                append_log(job, f"cancelled; worker {how}")
                continue
            state = jobs.fail(self.store, job_id, f"worker pid {proc.pid} {how}", retryable=True)
            append_log(job, f"worker pid {proc.pid} {how} on attempt {job.attempts}; job is now {state}")

    def _enforce_cancels(self) -> None:
        now = time.monotonic()
        for job in jobs.running_jobs(self.store, self.host):
            if not job.cancel_requested:
                continue
            proc = self.children.get(job.id)
            pid = proc.pid if proc is not None else job.pid
            first = self._cancel_seen.setdefault(job.id, now)
            if first == now:
                _signal(pid, signal.SIGTERM)
            elif now - first > self.cancel_grace_s:
                _kill_group(pid)
                if proc is None and not _alive(pid):  # not ours: nobody else will record it
                    jobs.mark_cancelled(self.store, job.id, "cancelled; worker killed")
                    self._cancel_seen.pop(job.id, None)

    def _recover_stale(self) -> None:
        for job in jobs.running_jobs(self.store):
            proc = self.children.get(job.id)
            stale = jobs.is_stale(job, self.heartbeat_timeout_s)
            if job.host not in (None, self.host):  # another host's: only its heartbeat tells
                if stale:
                    state = jobs.fail(
                        self.store, job.id, f"host {job.host} lost (no heartbeat)", retryable=True
                    )
                    append_log(
                        job, f"host {job.host} stopped beating, attempt {job.attempts}; job is now {state}"
                    )
                continue
            if proc is not None:
                if stale:
                    _kill_group(proc.pid)  # hung: reaped, and requeued, on the next pass
                continue
            # a worker of an earlier scheduler: fine while it beats; requeued once it is gone
            if not stale and (job.pid is None or _alive(job.pid)):
                continue
            _kill_group(job.pid)
            lost = "no heartbeat" if stale else "process gone"
            state = jobs.fail(self.store, job.id, f"worker pid {job.pid} lost ({lost})", retryable=True)
            append_log(job, f"worker pid {job.pid} lost ({lost}), attempt {job.attempts}; job is now {state}")

    # --- the loop -----------------------------------------------------------------------

    def busy(self) -> bool:
        """Jobs to run or watch."""
        return bool(
            self.children or jobs.running_jobs(self.store, self.host) or jobs.queued_in_order(self.store)
        )

    def _stay_after_release(self) -> bool:
        """Leaving when idle: let go of the kernel lock first, then look at the queue once
        more. A job submitted a moment ago either saw the lock still held (and counts on
        this kernel: then it is in the queue now, and this kernel takes the lock back and
        stays) or saw it free (and started a kernel of its own). Without this, a job
        queued between the last look and the exit waited for the next submission."""
        self.release()
        if not jobs.queued_in_order(self.store):
            return False
        try:
            self.acquire()
        except JobError:  # another kernel has started for it
            return False
        return True

    def run(
        self,
        until_idle: bool = False,
        idle_exit_s: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """Schedule until `stop` is set; with `until_idle`, return once nothing is queued
        or running; with `idle_exit_s`, return after that long with nothing to do. An
        active schedule counts as something to do for `idle_exit_s` (nothing else would
        start a kernel when it falls due), not for `until_idle` (drain the queue, then stop)."""
        self.acquire()
        if self.use_zygote and self.python == sys.executable and self._zygote is None:
            from llmos.kernel.zygote import Zygote

            with contextlib.suppress(OSError):
                self._zygote = Zygote(self.python)  # warms up while the first jobs are admitted
        idle_since = time.monotonic()
        try:
            while stop is None or not stop.is_set():
                self.step()
                working = self.busy()
                if until_idle and not working:
                    return
                if working or (idle_exit_s is not None and schedules.any_active(self.store)):
                    idle_since = time.monotonic()
                elif idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                    if not self._stay_after_release():
                        return
                    idle_since = time.monotonic()
                time.sleep(self.poll_s)
        finally:
            self.close_zygote()
            self.release()


def kernel_pid(settings: Settings) -> int | None:
    """The pid of the workspace's running scheduler, or None."""
    path = settings.home / LOCK_FILE
    if not path.exists():
        return None
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            text = handle.read().strip()
            return int(text) if text.isdigit() else -1
        return None


SPAWN_FILE = "kernel.spawn"
SPAWN_GRACE_S = 15.0  # a scheduler started this recently is taken to be starting up


def ensure_kernel(settings: Settings, idle_exit_s: float | None = None) -> int:
    """Start a background scheduler for the workspace unless one runs; return its pid.
    It stops after `idle_exit_s` (env LLMOS_KERNEL_IDLE_EXIT, default 60) without jobs."""
    if idle_exit_s is None:
        idle_exit_s = float(os.environ.get(ENV_IDLE_EXIT, "60"))
    pid = kernel_pid(settings)
    if pid is not None:
        return pid
    settings.home.mkdir(parents=True, exist_ok=True)
    # Many submitters at once (four HTTP clients, say) would each start a scheduler in the
    # second before the first one holds the kernel lock; the spawn record lets the others
    # see that one is on its way.
    with (settings.home / SPAWN_FILE).open("a+") as record:
        fcntl.flock(record, fcntl.LOCK_EX)
        pid = kernel_pid(settings)
        if pid is not None:
            return pid
        record.seek(0)
        started, _, recent = record.read().strip().partition(" ")
        if (
            recent.isdigit()
            and time.time() - float(started or 0) < SPAWN_GRACE_S
            and _running(int(recent))
            and not _has_held_lock(settings, recent)
        ):
            return int(recent)  # still starting up: it will take the lock and see the job
        with (settings.home / KERNEL_LOG).open("ab") as out:
            proc = subprocess.Popen(
                [*KERNEL_ARGV, "--home", str(settings.home), "--idle-exit", str(idle_exit_s)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        record.seek(0)
        record.truncate()
        record.write(f"{time.time():.3f} {proc.pid}")
        record.flush()
    return proc.pid


def _has_held_lock(settings: Settings, pid: str) -> bool:
    """Has the kernel `pid` taken the lock already? Then, the lock being free, it is leaving
    (idle), not starting up: a job queued now needs a kernel of its own."""
    with contextlib.suppress(OSError):
        return (settings.home / LOCK_FILE).read_text().strip() == pid
    return False


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited child its parent has not reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return _alive(pid)
    return state != "Z"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmos-kernel", description="Run the llmos job scheduler.")
    parser.add_argument("--home", required=True)
    parser.add_argument("--idle-exit", type=float, default=None)
    parser.add_argument("--cpus", type=int, default=None)
    parser.add_argument("--gpus", type=int, default=None)
    parser.add_argument("--memory-mb", type=int, default=None)
    args = parser.parse_args(argv)
    store = Store(Settings.resolve(args.home))
    scheduler = Scheduler(store, machine_capacity(args.cpus, args.gpus, args.memory_mb))
    try:
        scheduler.run(idle_exit_s=args.idle_exit)
    except JobError as exc:  # another kernel won the race to start: that one serves the queue
        print(exc.message, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
