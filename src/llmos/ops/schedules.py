"""Schedules: periodic jobs the kernel submits on its own, every N seconds or on a cron
expression. `add_schedule` takes the job as the words of its CLI verb
(`adapt support --on-drift`, `train SPEC`, `eval MODEL --data D`, `predict MODEL --data D`),
checks it as a manual submission would (the deployment, model, dataset or spec must
exist and be valid), and stores its kind and arguments; nothing is stored on bad input.

When a schedule falls due, the kernel (`llmos.kernel.schedules`) calls `fire`, which
submits the job through the same operations as a manual submission, acting as the
schedule's creator. `adapt --on-drift` first runs the monitor, as `llmos adapt --on-drift`
does, and adapts only when the latest window shows drift.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any, NoReturn

from pydantic import Field

from llmos.core.errors import UsageError
from llmos.ops.context import Actor, Context
from llmos.ops.registry import operation
from llmos.ops.results import Result, Timestamp

KINDS = ("adapt", "train", "eval", "predict")
# the permission the job itself needs, beyond "train" to schedule it
JOB_PERMISSIONS = {"adapt": "adapt", "train": "train", "eval": "train", "predict": "train"}


class ScheduleInfo(Result):
    """One schedule: what it submits, how often, and what its last firing did."""

    name: str
    kind: str = Field(description="adapt, train, eval or predict")
    command: str = Field(description="The job as written: `adapt support --on-drift`")
    payload: dict[str, Any] = Field(default_factory=dict, description="The job's checked arguments")
    every: int | None = Field(None, description="Seconds between runs (None: cron)")
    cron: str | None = Field(None, description="A five-field cron expression, in UTC (None: every)")
    paused: bool = False
    next_run_at: Timestamp
    last_run_at: Timestamp | None = None
    last_job_id: int | None = None
    last_outcome: str | None = Field(None, description="queued job N, skipped: why, or failed: why")
    runs: int = Field(0, description="How many times it fired")
    created_by: str = ""
    created_at: Timestamp


def schedule_info(row: Any) -> ScheduleInfo:
    return ScheduleInfo(
        name=row.name,
        kind=row.kind,
        command=row.command,
        payload=row.payload or {},
        every=row.every_s,
        cron=row.cron,
        paused=row.paused,
        next_run_at=row.next_run_at,
        last_run_at=row.last_run_at,
        last_job_id=row.last_job_id,
        last_outcome=row.last_outcome,
        runs=row.runs,
        created_by=row.created_by,
        created_at=row.created_at,
    )


# --- the job's words -------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"schedule job `{self.prog}`: {message}")


def _parser(kind: str) -> _Parser:
    p = _Parser(prog=kind, add_help=False, allow_abbrev=False)
    if kind == "adapt":
        p.add_argument("deployment")
        p.add_argument("--on-drift", action="store_true")
        p.add_argument("--window", type=int, default=200)
        p.add_argument("--data")
        p.add_argument("--cpus", type=int, default=1)
        p.add_argument("--epochs", type=int)
        p.add_argument("--replay-ratio", type=float)
        p.add_argument("--ewc", type=float)
        p.add_argument("--lwf", type=float)
        p.add_argument("--tolerance", type=float)
        p.add_argument("--holdout", type=float)
        p.add_argument("--new-labels", action="store_true", default=None)
    elif kind == "train":
        p.add_argument("spec")
        p.add_argument("--backend")
        p.add_argument("--priority", type=int, default=0)
        p.add_argument("--cpus", type=int)
    else:
        p.add_argument("model")
        p.add_argument("--data", required=True)
        p.add_argument("--cpus", type=int, default=1)
        if kind == "eval":
            p.add_argument("--optimize")
        else:
            p.add_argument("--name")
            p.add_argument("--column")
    return p


def parse_job(ctx: Context, job: list[str] | str) -> tuple[str, dict[str, Any], str]:
    """(kind, checked payload, command text) from the job's words; `UsageError` (or the
    error a manual submission would raise) naming what is wrong."""
    try:
        words = shlex.split(job) if isinstance(job, str) else list(job)
    except ValueError as exc:
        raise UsageError(f"schedule job {job!r}: {exc}") from None
    if not words:
        raise UsageError(f"a schedule needs a job after `--`: one of {', '.join(KINDS)} with its arguments")
    kind, rest = words[0], words[1:]
    if kind not in KINDS:
        raise UsageError(f"unknown job {kind!r} for a schedule: use one of {', '.join(KINDS)}")
    ctx.require(JOB_PERMISSIONS[kind])
    args = vars(_parser(kind).parse_args(rest))
    payload = {k: v for k, v in args.items() if v is not None}
    command = shlex.join(words)
    if kind == "adapt":
        from llmos.ops.adaptation import _settings
        from llmos.store.deployments import get_deployment

        get_deployment(ctx.store, payload["deployment"])
        if payload["cpus"] < 1 or payload["window"] < 1:
            raise UsageError("schedule job `adapt`: --cpus and --window must be >= 1")
        _settings(_adapt_settings(payload))
    elif kind == "train":
        from llmos.ops.jobs import parse_yaml, to_spec
        from llmos.train.inputs import check_inputs

        spec: Any = payload["spec"]
        if "\n" in spec or spec.lstrip().startswith("{"):
            spec = parse_yaml(spec)
        task = to_spec(spec, payload.get("backend"))
        check_inputs(ctx.store, task)
        payload["spec"] = task.model_dump(mode="json")
        command = shlex.join(["train", task.name, *words[2:]])
    else:
        from llmos.ops.jobs import _model_and_dataset

        _model_and_dataset(ctx, payload["model"], payload["data"])
        if payload["cpus"] < 1:
            raise UsageError(f"schedule job `{kind}`: --cpus must be >= 1")
    return kind, payload, command


def _adapt_settings(payload: dict[str, Any]) -> dict[str, Any]:
    skip = {"deployment", "on_drift", "window", "data", "cpus"}
    return {k: v for k, v in payload.items() if k not in skip}


# --- the operations --------------------------------------------------------------------


@operation("train")
def add_schedule(
    ctx: Context,
    name: str,
    job: list[str] | str,
    *,
    every: str | int | None = None,
    cron: str | None = None,
    paused: bool = False,
    start_kernel: bool = True,
) -> ScheduleInfo:
    """Run `job` (the words of `adapt`, `train`, `eval` or `predict`) every `every`
    (`10s`, `5m`, `1h`, `1d`) or on `cron` (five fields, UTC); the first run is one period
    (or the next cron time) from now. The job is checked now; nothing is stored on bad input."""
    from llmos.kernel import schedules
    from llmos.store.audit import record

    if (every is None) == (cron is None):
        raise UsageError("a schedule needs exactly one of --every and --cron")
    every_s = schedules.parse_every(every) if every is not None else None
    cron = schedules.check_cron(cron) if cron is not None else None
    from llmos.core.util import check_name

    check_name(name, "schedule name")
    kind, payload, command = parse_job(ctx, job)
    row = schedules.add(
        ctx.store,
        name,
        kind,
        payload,
        every_s=every_s,
        cron=cron,
        command=command,
        created_by=ctx.actor.name,
        role=ctx.actor.role,
        paused=paused,
    )
    record(
        ctx.store, "schedule.add", f"schedule {name}", "ok", {"job": command, "every": every_s, "cron": cron}
    )
    if start_kernel and not paused:
        _ensure_kernel(ctx)
    return schedule_info(row)


def _ensure_kernel(ctx: Context) -> None:
    from llmos.kernel.scheduler import ensure_kernel

    ensure_kernel(ctx.settings)


@operation("jobs:read")
def schedules(ctx: Context) -> list[ScheduleInfo]:
    """Every schedule, by name, with its next and last run."""
    from llmos.kernel.schedules import list_schedules

    return [schedule_info(r) for r in list_schedules(ctx.store)]


@operation("jobs:read")
def schedule(ctx: Context, name: str) -> ScheduleInfo:
    """One schedule: its job, period or cron, next and last run, and the last outcome."""
    from llmos.kernel.schedules import get

    return schedule_info(get(ctx.store, name))


@operation("train")
def pause_schedule(ctx: Context, name: str) -> ScheduleInfo:
    """Stop a schedule firing until it is resumed."""
    from llmos.kernel.schedules import set_paused
    from llmos.store.audit import record

    row = set_paused(ctx.store, name, True)
    record(ctx.store, "schedule.pause", f"schedule {name}", "ok", {})
    return schedule_info(row)


@operation("train")
def resume_schedule(ctx: Context, name: str, start_kernel: bool = True) -> ScheduleInfo:
    """Fire a paused schedule again from its next occurrence (missed ones are not run)."""
    from llmos.kernel.schedules import set_paused
    from llmos.store.audit import record

    row = set_paused(ctx.store, name, False)
    record(ctx.store, "schedule.resume", f"schedule {name}", "ok", {})
    if start_kernel:
        _ensure_kernel(ctx)
    return schedule_info(row)


@operation("train")
def remove_schedule(ctx: Context, name: str) -> ScheduleInfo:
    """Delete a schedule (the jobs it submitted stay)."""
    from llmos.kernel.schedules import remove
    from llmos.store.audit import record

    row = remove(ctx.store, name)
    record(ctx.store, "schedule.remove", f"schedule {name}", "ok", {})
    return schedule_info(row)


# --- firing (called by the kernel) -----------------------------------------------------


def fire(store: Any, row: Any) -> tuple[int | None, str]:
    """Submit a due schedule's job as a manual submission would, acting as its creator
    (with the role it had when it added the schedule): the job's id and the outcome."""
    ctx = Context(store, Actor(row.created_by or "schedule", row.role or "admin"))
    p = dict(row.payload or {})
    kind = row.kind
    if kind == "adapt":
        from llmos.ops.adaptation import submit_adapt

        if p.get("on_drift"):
            from llmos.ops.monitoring import monitor

            report = monitor(ctx, p["deployment"], window=p.get("window", 200), fire=True)
            if not report.drifted:
                why = "no full window yet" if report.latest is None else "the latest window shows no drift"
                return None, f"skipped: {why}"
        job: Any = submit_adapt(
            ctx, p["deployment"], data=p.get("data"), cpus=p.get("cpus", 1), start_kernel=False,
            **_adapt_settings(p),
        )  # fmt: skip
    elif kind == "train":
        from llmos.ops.jobs import submit_train

        extra = {k: p[k] for k in ("cpus", "priority", "backend") if k in p}
        job = submit_train(ctx, p["spec"], start_kernel=False, **extra)
    elif kind == "eval":
        from llmos.ops.jobs import submit_eval

        job = submit_eval(
            ctx, p["model"], p["data"], optimize=p.get("optimize"), cpus=p["cpus"], start_kernel=False
        )
    elif kind == "predict":
        from llmos.ops.jobs import submit_predict

        job = submit_predict(
            ctx, p["model"], p["data"], name=p.get("name"), column=p.get("column"), cpus=p["cpus"],
            start_kernel=False,
        )  # fmt: skip
    else:
        raise UsageError(f"unknown schedule job kind {kind!r}")
    return int(job.id), f"queued job {job.id}"
