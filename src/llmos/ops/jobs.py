"""Jobs: submitting training, evaluation and batch prediction; listing, showing,
cancelling and retrying them; following a job as it runs; the kernel's status.

A submission checks its inputs first (the spec, its datasets and columns, the model),
so a bad one fails here, with nothing queued, whatever the entry point. The kernel
(`llmos.kernel`) then runs the job in a worker process; `ensure_kernel` starts a
background scheduler for the workspace unless one runs, for the CLI, the SDK and the
HTTP server alike.

Following a job (`job_events`) reads what the kernel stores: the job row (state,
attempts, the worker's progress snapshot, refreshed by its heartbeat every second) and
the job's log file. Events are typed (`state`, `progress`, `log`, `end`) and carry an
`id`: the byte offset of the log read so far. Resuming with `after=ID` (the HTTP
stream's `Last-Event-ID`) therefore repeats no log line and misses none; state and
progress are snapshots and are sent afresh on resume. The stream ends with one `end`
event holding the finished job (its result or error).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field

from llmos.core.errors import JobError, SpecError, UsageError
from llmos.core.progress import Progress
from llmos.ops.context import Context
from llmos.ops.registry import operation
from llmos.ops.results import Result, Timestamp
from llmos.spec.schema import TaskSpec
from llmos.store.schema import FINISHED_STATES, Job

SpecLike = str | dict[str, Any] | TaskSpec
KINDS = ("train", "eval", "predict")


class JobResources(Result):
    cpus: int
    gpus: int
    memory_mb: int


class JobInfo(Result):
    """One job: what it runs, with what, how far it got, and how it ended."""

    id: int
    kind: str = Field(description="train, eval, batch-predict or adapt")
    name: str
    state: str = Field(description="queued, running, succeeded, failed or cancelled")
    priority: int
    resources: JobResources
    attempts: int
    max_attempts: int
    progress: dict[str, Any] = Field(
        default_factory=dict,
        description="The worker's last report: task (phase), done, total, loss, samples_per_s, message",
    )
    result: dict[str, Any] | None = Field(None, description="What a succeeded job made (its model, ...)")
    error: str | None = Field(None, description="Why a failed or cancelled job ended")
    payload: dict[str, Any] = Field(default_factory=dict, description="The spec or arguments it runs")
    handler: str = ""
    threads: int | None = None
    pid: int | None = None
    cancel_requested: bool = False
    log: str = Field("", description="Where the job's log is on the server")
    created_at: Timestamp
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    heartbeat_at: Timestamp | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


def job_info(row: Job) -> JobInfo:
    return JobInfo(
        id=row.id,
        kind=row.kind,
        name=row.name,
        state=row.state,
        priority=row.priority,
        resources=JobResources(cpus=row.cpus, gpus=row.gpus, memory_mb=row.memory_mb),
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        progress=row.progress or {},
        result=row.result,
        error=row.error,
        payload=row.payload or {},
        handler=row.handler,
        threads=row.threads,
        pid=row.pid,
        cancel_requested=bool(row.cancel_requested),
        log=row.log_path or "",
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
    )


class JobLog(Result):
    """A job's log: its worker's output and the kernel's lines about it."""

    id: int
    state: str
    log: str

    def __str__(self) -> str:
        return self.log

    def __contains__(self, text: object) -> bool:  # `"resumed" in ws.job_log(id)`
        return isinstance(text, str) and text in self.log


class KernelStatus(Result):
    running: bool = Field(description="Whether a scheduler runs for the workspace")
    pid: int | None = Field(None, description="Its process id on the workspace's machine")
    queued: int
    active: int = Field(description="Jobs running now")
    capacity: JobResources = Field(description="What a kernel on the workspace's machine schedules")


# --- events --------------------------------------------------------------------------


class _Event(Result):
    id: int = Field(description="Resume cursor: the bytes of the job's log sent so far")
    job: int


class JobStateEvent(_Event):
    type: Literal["state"] = "state"
    state: str
    attempt: int
    max_attempts: int


class JobProgressEvent(_Event):
    type: Literal["progress"] = "progress"
    phase: str = Field(description="What runs now: `epoch 1/3`, `evaluating`, `predicting` ...")
    step: int = Field(description="Items of this phase done")
    total: int | None = Field(None, description="Items in this phase (None: unknown)")
    loss: float | None = None
    samples_per_s: float | None = None


class JobLogEvent(_Event):
    type: Literal["log"] = "log"
    line: str


class JobEndEvent(_Event):
    type: Literal["end"] = "end"
    state: str
    result: dict[str, Any] | None = None
    error: str | None = None
    info: JobInfo = Field(description="The finished job")


class JobHeartbeat(_Event):
    """Nothing happened for a while (the HTTP stream sends it as a comment)."""

    type: Literal["heartbeat"] = "heartbeat"


JobEvent = Annotated[
    JobStateEvent | JobProgressEvent | JobLogEvent | JobEndEvent | JobHeartbeat,
    Field(discriminator="type"),
]


# --- submitting ----------------------------------------------------------------------


def to_spec(spec: SpecLike | os.PathLike[str], backend: str | None = None, source: str = "spec") -> TaskSpec:
    """A validated spec from a dict, YAML text, a `TaskSpec` or (on the caller's machine)
    a file; `backend` overrides `backend.type`. Every problem is listed (`SpecError`)."""
    from llmos.spec import load_spec, parse_spec

    if isinstance(spec, TaskSpec):
        task = spec
    elif isinstance(spec, dict):
        task = parse_spec(spec, source)
    elif isinstance(spec, str) and "\n" in spec:
        task = parse_spec(parse_yaml(spec, source), source)
    elif isinstance(spec, (str, os.PathLike)):
        task = load_spec(spec)
    else:
        raise SpecError(f"{source}: a spec is a mapping of keys to values or YAML text")
    if backend is not None:
        data = task.model_dump(mode="json")
        data["backend"]["type"] = backend
        task = parse_spec(data, "--backend")
    return task


def parse_yaml(text: str, source: str = "spec") -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SpecError(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None


def _queue(
    ctx: Context,
    kind: str,
    name: str,
    handler: str,
    payload: dict[str, Any],
    *,
    priority: int,
    cpus: int,
    gpus: int,
    memory_mb: int,
    max_attempts: int,
    start_kernel: bool,
) -> JobInfo:
    from llmos.kernel import jobs
    from llmos.kernel.resources import Resources
    from llmos.kernel.scheduler import ensure_kernel
    from llmos.store.audit import record

    if cpus < 1 or gpus < 0 or memory_mb < 0:
        raise UsageError(
            f"resources: cpus must be >= 1 and gpus, memory_mb >= 0 (got {cpus}, {gpus}, {memory_mb})"
        )
    job = jobs.submit(
        ctx.store,
        kind=kind,
        name=name,
        handler=handler,
        payload=payload,
        resources=Resources(cpus, gpus, memory_mb),
        priority=priority,
        max_attempts=max_attempts,
    )
    record(ctx.store, "job.submit", f"job {job.id}", "ok", {"kind": kind, "name": name})
    if start_kernel:
        ensure_kernel(ctx.settings)
    return job_info(job)


@operation("train")
def submit_train(
    ctx: Context,
    spec: SpecLike,
    *,
    priority: int = 0,
    cpus: int | None = None,
    gpus: int = 0,
    memory_mb: int = 0,
    max_attempts: int = 2,
    backend: str | None = None,
    start_kernel: bool = True,
) -> JobInfo:
    """Queue a training run from a spec (a mapping, YAML text or a `TaskSpec`); its
    inputs are checked first, so a bad spec fails here and nothing is queued. `cpus`
    (default: all of the workspace machine's) is also the job's torch thread count."""
    from llmos.kernel.resources import machine_capacity
    from llmos.train.inputs import check_inputs
    from llmos.train.jobs import TRAIN_HANDLER

    if isinstance(spec, str) and "\n" not in spec:
        spec = parse_yaml(spec)  # a one-line YAML text: never a path on the workspace's machine
        if not isinstance(spec, dict):
            raise SpecError("spec: a spec is a mapping of keys to values (YAML text or JSON object)")
    task = to_spec(spec, backend)
    check_inputs(ctx.store, task)
    if cpus is None:
        cpus = machine_capacity().cpus
    if task.backend.type == "ray":
        cpus = max(cpus, task.backend.workers * task.backend.cpus_per_worker)
        gpus = max(gpus, task.backend.workers * task.backend.gpus_per_worker)
    return _queue(
        ctx,
        "train",
        task.name,
        TRAIN_HANDLER,
        {"spec": task.model_dump(mode="json")},
        priority=priority,
        cpus=cpus,
        gpus=gpus,
        memory_mb=memory_mb,
        max_attempts=max_attempts,
        start_kernel=start_kernel,
    )


def _model_and_dataset(ctx: Context, model: str, data: str) -> tuple[Any, Any]:
    from llmos.store.datasets import get_dataset
    from llmos.store.models import get_model

    return get_model(ctx.store, model), get_dataset(ctx.store, data)


@operation("train")
def submit_eval(
    ctx: Context,
    model: str,
    data: str,
    *,
    optimize: str | None = None,
    priority: int = 0,
    cpus: int = 1,
    max_attempts: int = 2,
    start_kernel: bool = True,
) -> JobInfo:
    """Queue an evaluation of a registered model on a dataset version (with `optimize`,
    of its int8 or ONNX version beside the original); the metrics are the job's result."""
    from llmos.train.jobs import EVAL_HANDLER, check_optimize

    m, d = _model_and_dataset(ctx, model, data)
    check_optimize(m, optimize)
    return _queue(
        ctx,
        "eval",
        m.name,
        EVAL_HANDLER,
        {"model": m.ref, "data": d.ref, **({"optimize": optimize} if optimize else {})},
        priority=priority,
        cpus=cpus,
        gpus=0,
        memory_mb=0,
        max_attempts=max_attempts,
        start_kernel=start_kernel,
    )


@operation("train")
def submit_predict(
    ctx: Context,
    model: str,
    data: str,
    *,
    name: str | None = None,
    column: str | None = None,
    backend: dict[str, Any] | None = None,
    priority: int = 0,
    cpus: int = 1,
    max_attempts: int = 2,
    start_kernel: bool = True,
) -> JobInfo:
    """Queue a batch prediction of a dataset version; it registers a prediction set
    (`NAME@V`, default name `<model>-on-<dataset>`)."""
    from llmos.core.util import check_name
    from llmos.spec.schema import BackendConfig
    from llmos.train.jobs import PREDICT_HANDLER

    m, d = _model_and_dataset(ctx, model, data)
    if name is not None:
        check_name(name, "prediction set name")
    from pydantic import ValidationError

    try:
        ray = BackendConfig.model_validate(backend or {"type": "local"})
    except ValidationError as exc:
        from llmos.spec.load import format_errors

        raise UsageError("backend: " + "; ".join(format_errors(exc))) from None
    if ray.type == "ray":
        cpus = max(cpus, ray.workers * ray.cpus_per_worker)
    payload = {"model": m.ref, "data": d.ref, "name": name, "column": column, "backend": ray.model_dump()}
    return _queue(
        ctx,
        "batch-predict",
        m.name,
        PREDICT_HANDLER,
        payload,
        priority=priority,
        cpus=cpus,
        gpus=0,
        memory_mb=0,
        max_attempts=max_attempts,
        start_kernel=start_kernel,
    )


# --- watching ------------------------------------------------------------------------


@operation("jobs:read")
def jobs(ctx: Context, state: str | None = None, limit: int | None = None) -> list[JobInfo]:
    """Jobs, newest first (`state`: queued, running, succeeded, failed or cancelled)."""
    from llmos.kernel.jobs import list_jobs

    if limit is not None and limit < 1:
        raise UsageError(f"limit must be >= 1 (got {limit})")
    return [job_info(j) for j in list_jobs(ctx.store, state, limit)]


@operation("jobs:read")
def job(ctx: Context, id: int | str) -> JobInfo:
    """One job: its spec or arguments, resources, attempts, progress, result or error."""
    from llmos.kernel.jobs import get_job

    return job_info(get_job(ctx.store, id))


@operation("jobs:read")
def job_log(ctx: Context, id: int | str) -> JobLog:
    """A job's log so far."""
    from llmos.kernel.jobs import get_job

    row = get_job(ctx.store, id)
    path = Path(row.log_path)
    text = path.read_text(errors="replace") if path.exists() else ""
    return JobLog(id=row.id, state=row.state, log=text)


@operation("jobs:read")
def wait_job(ctx: Context, id: int | str, timeout: float | None = None, poll: float = 0.5) -> JobInfo:
    """Block until the job has finished and return it (`JobError` after `timeout` seconds)."""
    from llmos.kernel.jobs import get_job

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        row = get_job(ctx.store, id)
        if row.finished:
            return job_info(row)
        if deadline is not None and time.monotonic() > deadline:
            raise JobError(f"job {row.id} is still {row.state} after {timeout:.0f}s")
        time.sleep(poll)


@operation("jobs:read")
def job_events(
    ctx: Context, id: int | str, after: int = 0, poll: float = 0.3, heartbeat: float | None = None
) -> Iterator[JobStateEvent | JobProgressEvent | JobLogEvent | JobEndEvent | JobHeartbeat]:
    """Follow a job as it runs: its state changes, progress, log lines and, last, an `end`
    event with the finished job. `after` resumes after an event's `id`; `heartbeat`
    (seconds) yields a heartbeat event when nothing else happened for that long."""
    from llmos.kernel.jobs import get_job

    if after < 0:
        raise UsageError(f"after must be >= 0 (got {after})")
    row = get_job(ctx.store, id)  # an unknown job fails now, not at the first event
    return _follow(ctx, row.id, after, poll, heartbeat)


def _follow(
    ctx: Context, job_id: int, offset: int, poll: float, heartbeat: float | None
) -> Iterator[JobStateEvent | JobProgressEvent | JobLogEvent | JobEndEvent | JobHeartbeat]:
    from llmos.kernel.jobs import get_job

    seen_state: tuple[str, int] | None = None
    seen_progress: tuple[Any, ...] | None = None
    quiet_since = time.monotonic()
    while True:
        row = get_job(ctx.store, job_id)  # read before the log: no line written before the end is missed
        sent = False
        if (row.state, row.attempts) != seen_state:
            seen_state = (row.state, row.attempts)
            yield JobStateEvent(
                id=offset, job=job_id, state=row.state, attempt=row.attempts, max_attempts=row.max_attempts
            )
            sent = True
        path = Path(row.log_path)
        if path.exists():
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            # whole lines only while it runs; a partial last line waits for the next pass
            cut = len(chunk) if row.finished else chunk.rfind(b"\n") + 1
            for raw in chunk[:cut].splitlines(keepends=True):
                offset += len(raw)
                yield JobLogEvent(id=offset, job=job_id, line=raw.decode(errors="replace").rstrip("\r\n"))
                sent = True
        p = row.progress or {}
        if p.get("task") and row.state == "running":
            now = (p["task"], p.get("done", 0), p.get("total"), p.get("loss"), p.get("samples_per_s"))
            if now != seen_progress:
                seen_progress = now
                yield JobProgressEvent(
                    id=offset,
                    job=job_id,
                    phase=str(p["task"]),
                    step=int(p.get("done", 0)),
                    total=p.get("total"),
                    loss=p.get("loss"),
                    samples_per_s=p.get("samples_per_s"),
                )
                sent = True
        if row.finished:
            yield JobEndEvent(
                id=offset, job=job_id, state=row.state, result=row.result, error=row.error, info=job_info(row)
            )
            return
        if sent:
            quiet_since = time.monotonic()
        elif heartbeat is not None and time.monotonic() - quiet_since >= heartbeat:
            quiet_since = time.monotonic()
            yield JobHeartbeat(id=offset, job=job_id)
        time.sleep(poll)


def follow_events(events: Iterator[Any], progress: Progress | None = None) -> JobInfo:
    """Drive a `Progress` (the CLI's bar) from a job's events; return the finished job."""
    phase, done = None, 0
    for event in events:
        if event.type == "log" and progress is not None:
            progress.log(event.line)
        elif event.type == "progress" and progress is not None:
            if event.phase != phase:
                phase, done = event.phase, 0
                progress.start(phase, event.total)
            if event.step > done:
                stats = {k: v for k in ("loss", "samples_per_s") if (v := getattr(event, k)) is not None}
                progress.advance(event.step - done, **stats)
                done = event.step
        elif event.type == "end":
            if progress is not None:
                progress.finish()
            return event.info
    raise JobError("the job's event stream ended before the job did")


# --- changing ------------------------------------------------------------------------


@operation("jobs:write")
def cancel_job(ctx: Context, id: int | str, wait: float = 0.0) -> JobInfo:
    """Cancel a queued job, or ask a running one to stop (with `wait`, wait that long for it
    to end). Cancelling a finished job is a `JobError` (HTTP 409) naming its state."""
    from llmos.kernel.jobs import get_job, request_cancel
    from llmos.store.audit import record

    row = request_cancel(ctx.store, id)
    record(ctx.store, "job.cancel", f"job {row.id}", "ok", {"state": row.state})
    if wait and not row.finished:
        deadline = time.monotonic() + wait
        while not row.finished and time.monotonic() < deadline:
            time.sleep(0.1)
            row = get_job(ctx.store, row.id)
    return job_info(row)


@operation("jobs:write")
def retry_job(ctx: Context, id: int | str, start_kernel: bool = True) -> JobInfo:
    """Queue a failed or cancelled job again with fresh attempts; a training job resumes
    from its checkpoints."""
    from llmos.kernel.jobs import retry
    from llmos.kernel.scheduler import ensure_kernel
    from llmos.store.audit import record

    row = retry(ctx.store, id)
    record(ctx.store, "job.retry", f"job {row.id}", "ok", {})
    if start_kernel:
        ensure_kernel(ctx.settings)
    return job_info(row)


@operation("jobs:read")
def kernel_status(ctx: Context) -> KernelStatus:
    """Whether a kernel runs for the workspace, and how many jobs are queued or running."""
    from llmos.kernel.jobs import list_jobs
    from llmos.kernel.resources import machine_capacity
    from llmos.kernel.scheduler import kernel_pid

    pid = kernel_pid(ctx.settings)
    cap = machine_capacity()
    return KernelStatus(
        running=pid is not None,
        pid=pid,
        queued=len(list_jobs(ctx.store, "queued")),
        active=len(list_jobs(ctx.store, "running")),
        capacity=JobResources(cpus=cap.cpus, gpus=cap.gpus, memory_mb=cap.memory_mb),
    )


def parse_job_id(value: int | str) -> int:
    """A job id from what a user typed (`UsageError` naming it when it is not one)."""
    from llmos.kernel.jobs import parse_job_id as parse

    return parse(value)
