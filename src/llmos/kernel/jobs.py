"""Jobs in the store: submit, look up, cancel and retry, and the state changes that the
scheduler and the workers make.

Every change is one store transaction, and every change of a job's state is a
conditional UPDATE (`... WHERE state = 'running'`): the scheduler, the worker's
heartbeat and a user's `cancel` may race, and whichever commits first wins while the
others see that their condition no longer holds. Writing first also keeps SQLite from
failing a transaction whose snapshot went stale between its read and its write.

States: queued -> running -> succeeded | failed | cancelled; a running job whose worker
dies goes back to queued while it has attempts left.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from llmos.core.errors import JobError, NotFoundError, UsageError
from llmos.core.settings import Settings
from llmos.core.util import check_name, utcnow
from llmos.kernel.resources import Resources
from llmos.store.db import Store
from llmos.store.schema import JOB_STATES, Job

ENV_HOST_ID = "LLMOS_HOST_ID"
_HANDLER_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def job_dir(settings: Settings, job_id: int) -> Path:
    """The job's folder: its log and what survives between attempts (checkpoints)."""
    return settings.home / "jobs" / str(job_id)


def resources_of(job: Job) -> Resources:
    return Resources(job.cpus, job.gpus, job.memory_mb)


def submit(
    store: Store,
    *,
    kind: str,
    name: str,
    handler: str,
    payload: dict[str, Any],
    resources: Resources | None = None,
    priority: int = 0,
    max_attempts: int = 1,
) -> Job:
    """Queue a job; `handler` is the `module:function` the worker will call. The acting
    user (`store.audit.current_actor`) is kept as `payload["submitted_by"]`, and the worker
    records the job's audit events (the model it registers, a promotion) in that name."""
    from llmos.store.audit import current_actor

    check_name(name, "job name")
    payload = {**payload, "submitted_by": payload.get("submitted_by") or current_actor()}
    if not _HANDLER_RE.match(handler):
        raise UsageError(f"invalid job handler {handler!r}: expected 'package.module:function'")
    if max_attempts < 1:
        raise UsageError(f"max_attempts must be >= 1 (got {max_attempts})")
    res = resources or Resources()
    from llmos.kernel.quotas import check_submit
    from llmos.store.scope import current_project

    check_submit(store, current_project(), res.gpus)  # out of CPU-minutes (GPU-hours) today: 429
    with store.transaction() as session:
        job = Job(
            kind=kind,
            name=name,
            handler=handler,
            payload=payload,
            state="queued",
            priority=priority,
            cpus=res.cpus,
            gpus=res.gpus,
            memory_mb=res.memory_mb,
            max_attempts=max_attempts,
            attempts=0,
            cancel_requested=False,
            progress={},
        )
        session.add(job)
        session.flush()
        job.log_path = str(job_dir(store.settings, job.id) / "log.txt")
        return job


MAX_JOB_ID = 2**63 - 1


def parse_job_id(text: str | int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"invalid job id {text!r}: job ids are numbers (see `llmos jobs list`)") from None
    if value < 1:
        raise UsageError(f"invalid job id {text!r}: job ids are numbers >= 1")
    if value > MAX_JOB_ID:  # past the databases' 64-bit integers: no such job can exist
        raise NotFoundError(f"job {value} not found; `llmos jobs list` shows the jobs")
    return value


def get_job(store: Store, job_id: int | str) -> Job:
    job_id = parse_job_id(job_id)
    with store.read() as session:
        job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"job {job_id} not found; `llmos jobs list` shows the jobs")
    return job


def list_jobs(store: Store, state: str | None = None, limit: int | None = None) -> list[Job]:
    if state is not None and state not in JOB_STATES:
        raise UsageError(f"unknown job state {state!r}: use one of {', '.join(JOB_STATES)}")
    with store.read() as session:
        query = select(Job).order_by(Job.id.desc())
        if state is not None:
            query = query.where(Job.state == state)
        if limit is not None:
            query = query.limit(limit)
        return list(session.scalars(query))


def _set(session: Session, job_id: int, conditions: list[Any], **values: Any) -> bool:
    result = session.execute(update(Job).where(Job.id == job_id, *conditions).values(**values))
    return bool(getattr(result, "rowcount", 0) == 1)


def request_cancel(store: Store, job_id: int | str) -> Job:
    """Cancel a queued job at once; ask a running one to stop (its worker and the
    scheduler end the process). Cancelling a finished job is an error."""
    job_id = parse_job_id(job_id)
    with store.transaction() as session:
        asked = _set(
            session,
            job_id,
            [Job.state == "queued"],
            state="cancelled",
            finished_at=utcnow(),
            error="cancelled before it started",
        ) or _set(session, job_id, [Job.state == "running"], cancel_requested=True)
    job = get_job(store, job_id)
    if not asked:
        raise JobError(f"job {job_id} has already {job.state}; there is nothing to cancel")
    return job


def retry(store: Store, job_id: int | str) -> Job:
    """Queue a failed or cancelled job again with fresh attempts; checkpoints it wrote
    are kept, so a training job resumes where it stopped."""
    job_id = parse_job_id(job_id)
    with store.transaction() as session:
        done = _set(
            session,
            job_id,
            [Job.state.in_(("failed", "cancelled"))],
            state="queued",
            attempts=0,
            cancel_requested=False,
            error=None,
            result=None,
            pid=None,
            started_at=None,
            finished_at=None,
            heartbeat_at=None,
        )
    job = get_job(store, job_id)
    if not done:
        hint = "submit it again to run it again" if job.state == "succeeded" else "wait for it or cancel it"
        raise JobError(f"job {job_id} is {job.state}, not failed or cancelled; {hint}")
    return job


# --- what the scheduler and the workers change ------------------------------------------


def queued_in_order(store: Store) -> list[Job]:
    """The queue in admission order: higher priority first, then older first."""
    with store.read() as session:
        query = select(Job).where(Job.state == "queued").order_by(Job.priority.desc(), Job.created_at, Job.id)
        return list(session.scalars(query))


def running_jobs(store: Store, host: str | None = None) -> list[Job]:
    """Running jobs; with `host`, those claimed by that host (or by a release that did not
    record hosts)."""
    with store.read() as session:
        query = select(Job).where(Job.state == "running")
        if host is not None:
            query = query.where((Job.host == host) | Job.host.is_(None))
        return list(session.scalars(query))


def host_id() -> str:
    """The name this host's scheduler claims jobs under (`LLMOS_HOST_ID`, else the host name)."""
    return os.environ.get(ENV_HOST_ID) or socket.gethostname()


def _start_in(session: Session, job_id: int, threads: int, host: str | None) -> bool:
    now = utcnow()
    return _set(
        session,
        job_id,
        [Job.state == "queued"],
        state="running",
        attempts=Job.attempts + 1,
        threads=threads,
        started_at=now,
        heartbeat_at=now,
        pid=None,
        cancel_requested=False,
        host=host or host_id(),
    )


def start(store: Store, job_id: int, threads: int, host: str | None = None) -> bool:
    """Claim a queued job for this host: running, one more attempt. False when it is no
    longer queued (another scheduler, here or on another host, claimed or cancelled it):
    the UPDATE's condition makes a claim happen once, on SQLite and PostgreSQL alike."""
    with store.transaction() as session:
        return _start_in(session, job_id, threads, host)


def claim_next(store: Store, threads: int = 1, host: str | None = None) -> int | None:
    """Claim the head of the queue for this host; the job's id, or None when the queue is
    empty. On PostgreSQL the head is read `FOR UPDATE SKIP LOCKED`, so schedulers on many
    hosts each take a different job instead of queueing on one row lock."""
    while True:
        with store.transaction() as session:
            query = (
                select(Job.id)
                .where(Job.state == "queued")
                .order_by(Job.priority.desc(), Job.created_at, Job.id)
                .limit(1)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            job_id = session.scalar(query)
            if job_id is None:
                return None
            if _start_in(session, job_id, threads, host):
                return int(job_id)
        # SQLite: another process claimed it between the read and the write; take the next


def set_pid(store: Store, job_id: int, pid: int) -> None:
    with store.transaction() as session:
        _set(session, job_id, [Job.state == "running"], pid=pid)


def heartbeat(store: Store, job_id: int, progress: dict[str, Any]) -> bool:
    """Record that the worker is alive and how far it got; True if cancel was asked."""
    with store.transaction() as session:
        _set(session, job_id, [Job.state == "running"], heartbeat_at=utcnow(), progress=progress)
        return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def finish_in(
    session: Session, job_id: int, result: dict[str, Any], progress: dict[str, Any] | None = None
) -> None:
    """Mark a job succeeded inside the caller's transaction (the one that registers what
    the job made). Raises if the job was cancelled meanwhile, rolling the whole lot back."""
    done = _set(
        session,
        job_id,
        [Job.state == "running", Job.cancel_requested.is_(False)],
        state="succeeded",
        result=result,
        finished_at=utcnow(),
        error=None,
        **({} if progress is None else {"progress": progress}),
    )
    if not done:
        raise JobError(f"job {job_id} was cancelled; its result is discarded")


def finish(store: Store, job_id: int, result: dict[str, Any], progress: dict[str, Any] | None = None) -> None:
    with store.transaction() as session:
        finish_in(session, job_id, result, progress)


def fail(store: Store, job_id: int, error: str, retryable: bool) -> str:
    """Record a failed attempt. A retryable failure (a dead worker, an unexpected crash)
    requeues the job while attempts are left; returns the new state."""
    values: dict[str, Any] = {"state": "failed", "finished_at": utcnow(), "error": error[:4000], "pid": None}
    if retryable:
        retry_left = Job.attempts < Job.max_attempts
        values["state"] = case((retry_left, "queued"), else_="failed")
        values["finished_at"] = case((retry_left, None), else_=utcnow())
    with store.transaction() as session:
        _set(session, job_id, [Job.state == "running"], **values)
        return str(session.scalar(select(Job.state).where(Job.id == job_id)))


def mark_cancelled(store: Store, job_id: int, reason: str = "cancelled") -> bool:
    with store.transaction() as session:
        return _set(
            session,
            job_id,
            [Job.state.in_(("queued", "running"))],
            state="cancelled",
            finished_at=utcnow(),
            error=reason,
            pid=None,
        )


def is_stale(job: Job, timeout_s: float) -> bool:
    """A running job whose worker has not beaten its heart for `timeout_s`."""
    beat = job.heartbeat_at or job.started_at
    return beat is None or utcnow() - beat > timedelta(seconds=timeout_s)
