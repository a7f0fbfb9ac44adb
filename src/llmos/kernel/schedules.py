"""Schedules in the store: periodic jobs the scheduler submits when they are due.

A schedule runs every N seconds (`every_s`) or on a cron expression (`croniter`). Its
occurrences lie on a fixed grid (the time it was added plus multiples of N, or the cron
times), so firings do not drift. Firing one is claimed by a conditional UPDATE
(`... WHERE next_run_at = <the occurrence read>`): schedulers on many hosts may see the
same due schedule and exactly one of them moves `next_run_at` on and submits the job. The
next occurrence is the first one after *now*, so a schedule missed while no kernel ran
(35 s of downtime on a 10 s schedule) runs once when the kernel is back, not once per
missed period.

Submitting is the job kind's `SUBMITTERS` entry (`module:function`, imported when
needed, as job handlers are): `llmos.ops.schedules:fire` for adapt, train, eval and
predict, which goes through the same operations as a manual submission, acting as the
schedule's creator.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from llmos.core.errors import NotFoundError, UsageError
from llmos.core.util import check_name, utcnow
from llmos.store.db import Store
from llmos.store.schema import Schedule
from llmos.store.scope import in_project

# kind -> "module:function" taking (store, schedule) and returning (job id or None, outcome)
SUBMITTERS: dict[str, str] = {
    kind: "llmos.ops.schedules:fire" for kind in ("adapt", "train", "eval", "predict")
}
Submitter = Callable[[Store, Schedule], tuple[int | None, str]]

MAX_EVERY_S = 366 * 86400
_EVERY_RE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(value: str | int) -> int:
    """Seconds from `90`, `10s`, `5m`, `1h` or `1d`; at least one second."""
    match = _EVERY_RE.match(str(value))
    if match is None:
        raise UsageError(f"invalid --every {value!r}: use a whole number of s, m, h or d (10s, 5m, 1h, 1d)")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 1:
        raise UsageError(f"invalid --every {value!r}: a schedule runs at most once a second (use >= 1s)")
    if seconds > MAX_EVERY_S:
        raise UsageError(f"invalid --every {value!r}: at most 366d (use --cron for rarer runs)")
    return seconds


def check_cron(expression: str) -> str:
    """A five-field cron expression (minute hour day-of-month month day-of-week)."""
    from croniter import croniter

    text = " ".join(expression.split())
    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise UsageError(
            f"invalid --cron {expression!r}: use five fields, minute hour day month weekday "
            "(e.g. '*/5 * * * *')"
        )
    return text


def next_run(
    every_s: int | None, cron: str | None, after: datetime, anchor: datetime | None = None
) -> datetime:
    """The first occurrence strictly after `after`: on the grid `anchor + k * every_s`
    (`after + every_s` without an anchor), or the cron expression's next time (UTC)."""
    if cron is not None:
        from croniter import croniter

        found: datetime = croniter(cron, after).get_next(datetime)
        return found
    if every_s is None or every_s < 1:
        raise UsageError("a schedule needs every_s >= 1 or a cron expression")
    period = timedelta(seconds=every_s)
    if anchor is None or anchor > after:
        return after + period if anchor is None else anchor
    missed = (after - anchor) // period  # whole periods between the anchor and now
    return anchor + (missed + 1) * period


# --- what users change -------------------------------------------------------------------


def add(
    store: Store,
    name: str,
    kind: str,
    payload: dict[str, Any],
    *,
    every_s: int | None = None,
    cron: str | None = None,
    command: str = "",
    created_by: str = "",
    role: str = "admin",
    paused: bool = False,
) -> Schedule:
    check_name(name, "schedule name")
    if kind not in SUBMITTERS:
        raise UsageError(f"unknown job kind {kind!r} for a schedule: use one of {', '.join(SUBMITTERS)}")
    if (every_s is None) == (cron is None):
        raise UsageError("a schedule needs exactly one of --every and --cron")
    if every_s is not None and not 1 <= every_s <= MAX_EVERY_S:
        raise UsageError(f"invalid --every {every_s}: use 1 second to 366 days")
    if cron is not None:
        cron = check_cron(cron)
    now = utcnow()
    row = Schedule(
        name=name,
        kind=kind,
        payload=payload,
        command=command,
        every_s=every_s,
        cron=cron,
        paused=paused,
        next_run_at=next_run(every_s, cron, now),
        runs=0,
        created_by=created_by,
        role=role,
        created_at=now,
    )
    try:
        with store.transaction() as session:
            if session.scalar(select(Schedule.id).where(Schedule.name == name)) is not None:
                raise UsageError(f"schedule {name!r} already exists; remove it first or pick another name")
            session.add(row)
            session.flush()
    except IntegrityError:
        raise UsageError(f"schedule {name!r} already exists; remove it first or pick another name") from None
    return get(store, name)


def get(store: Store, name: str) -> Schedule:
    with store.read() as session:
        row = session.scalar(select(Schedule).where(Schedule.name == name))
    if row is None:
        raise NotFoundError(f"schedule {name!r} not found; `llmos schedule list` shows the schedules")
    return row


def list_schedules(store: Store) -> list[Schedule]:
    with store.read() as session:
        return list(session.scalars(select(Schedule).order_by(Schedule.name)))


def set_paused(store: Store, name: str, paused: bool) -> Schedule:
    """Pause, or resume: a resumed schedule's next run is its next occurrence from now
    (what was missed while paused is not run)."""
    row = get(store, name)
    values: dict[str, Any] = {"paused": paused}
    if not paused:
        values["next_run_at"] = next_run(row.every_s, row.cron, utcnow(), row.next_run_at)
    with store.transaction() as session:
        session.execute(update(Schedule).where(Schedule.id == row.id).values(**values))
    return get(store, name)


def remove(store: Store, name: str) -> Schedule:
    row = get(store, name)
    with store.transaction() as session:
        session.execute(delete(Schedule).where(Schedule.id == row.id))
    return row


# --- what the scheduler does -------------------------------------------------------------


def any_active(store: Store) -> bool:
    with store.read() as session:
        return session.scalar(select(Schedule.id).where(Schedule.paused.is_(False)).limit(1)) is not None


def due(store: Store, now: datetime | None = None) -> list[Schedule]:
    now = now or utcnow()
    with store.read() as session:
        query = (
            select(Schedule)
            .where(Schedule.paused.is_(False), Schedule.next_run_at <= now)
            .order_by(Schedule.next_run_at)
        )
        return list(session.scalars(query))


def claim(store: Store, row: Schedule, now: datetime) -> bool:
    """Take the occurrence `row.next_run_at` for this scheduler: True once, for one caller,
    however many race for it; `next_run_at` moves to the first occurrence after `now`."""
    following = next_run(row.every_s, row.cron, now, row.next_run_at)
    with store.transaction() as session:
        result = session.execute(
            update(Schedule)
            .where(
                Schedule.id == row.id,
                Schedule.next_run_at == row.next_run_at,
                Schedule.paused.is_(False),
            )
            .values(next_run_at=following, last_run_at=now, runs=Schedule.runs + 1)
        )
        return bool(getattr(result, "rowcount", 0) == 1)


def record(store: Store, schedule_id: int, job_id: int | None, outcome: str) -> None:
    values: dict[str, Any] = {"last_outcome": outcome[:2000]}
    if job_id is not None:
        values["last_job_id"] = job_id
    with store.transaction() as session:
        session.execute(update(Schedule).where(Schedule.id == schedule_id).values(**values))


def resolve_submitter(kind: str) -> Submitter:
    path = SUBMITTERS.get(kind)
    if path is None:
        raise UsageError(f"no submitter for job kind {kind!r}")
    module_name, func = path.split(":")
    submitter: Submitter = getattr(importlib.import_module(module_name), func)
    return submitter


def fire_due(store: Store, now: datetime | None = None) -> list[tuple[Schedule, int | None, str]]:
    """Fire every due schedule this caller claims; each submission's (schedule, job id,
    outcome). A submission that fails (no new feedback, a model removed since) is recorded
    as the outcome and the schedule carries on."""
    now = now or utcnow()
    fired: list[tuple[Schedule, int | None, str]] = []
    for row in due(store, now):
        if not claim(store, row, now):
            continue  # another scheduler fired this occurrence
        try:
            with in_project(row.project):  # the job goes to the schedule's project
                job_id, outcome = resolve_submitter(row.kind)(store, row)
        except Exception as exc:  # a schedule's failure never stops the kernel
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            job_id, outcome = None, f"failed: {message}"
        record(store, row.id, job_id, outcome)
        fired.append((row, job_id, outcome))
    return fired
