"""`llmos jobs list|show|logs|cancel|retry` and `llmos kernel start|status`, and the
follower that shows a job's progress bar and log lines while it runs."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from llmos.cli.output import RichProgress, err, out, print_json, table
from llmos.cli.state import STATE

app = typer.Typer(help="Jobs the kernel runs: list, inspect, follow, cancel, retry.", no_args_is_help=True)
kernel_app = typer.Typer(help="The job scheduler.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
JobId = Annotated[str, typer.Argument(help="Job id (see `llmos jobs list`).")]


def _progress_text(p: dict[str, Any]) -> str:
    if not p.get("task"):
        return ""
    done = f"{p.get('done', 0)}/{p['total']}" if p.get("total") else str(p.get("done", 0))
    return f"{p['task']} {done}" + (f" loss {p['loss']:.4f}" if "loss" in p else "")


def follow(job_id: int, quiet: bool = False) -> Any:
    """Show a job's log lines and progress bar until it finishes, driven by its event
    stream (from the workspace, or from a server with --url); Ctrl-C asks whether to
    cancel the job or leave it running (detach). Returns the finished job, or None when
    detached."""
    from llmos.ops.jobs import follow_events

    backend = STATE.backend
    with RichProgress(quiet=quiet) as bar:
        try:
            return follow_events(backend.job_events(job_id), bar)
        except KeyboardInterrupt:
            bar.finish()
            choice = "c"
            if sys.stdin.isatty():
                choice = typer.prompt("cancel the job or detach from it? [c/d]", default="d").strip().lower()
            if choice.startswith("c"):
                job = backend.cancel_job(job_id, wait=5)
                err.print(f"job {job_id} {job.state}")
                raise typer.Exit(130) from None
            err.print(f"detached; job {job_id} keeps running (`llmos jobs logs {job_id} -f`)")
            return None


def attend(job: Any, detach: bool, json_out: bool) -> Any:
    """With `detach`, print the queued job and return None; else follow it to its end and
    return it if it succeeded (None if detached from), raising its failure otherwise."""
    from llmos.core.errors import JobError

    if detach:
        report_queued(job, json_out)
        return None
    done = follow(job.id, quiet=json_out)
    if done is not None and done.state != "succeeded":
        raise JobError(f"job {done.id} {done.state}: {done.error}")
    return done


def report_queued(job: Any, json_out: bool) -> None:
    if json_out:
        print_json(_info(job).as_json())
    else:
        out.print(
            f"job {job.id} queued ({job.kind} {job.name}); follow it with `llmos jobs logs {job.id} -f`"
        )


@app.command("list")
def list_(
    state: Annotated[str | None, typer.Option("--state", help="queued, running, succeeded, ...")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Newest N jobs.")] = 50,
    json_out: JsonOpt = False,
) -> None:
    """List jobs, newest first."""
    rows = [j.as_json() for j in STATE.backend.jobs(state, limit)]
    if json_out:
        print_json(rows)
        return
    table(
        None,
        [
            "id",
            "kind",
            "name",
            "state",
            "priority",
            "cpus",
            "attempts",
            "progress",
            "result / error",
            "created",
        ],
        [
            (
                r["id"],
                r["kind"],
                r["name"],
                r["state"],
                r["priority"],
                r["resources"]["cpus"],
                f"{r['attempts']}/{r['max_attempts']}",
                _progress_text(r["progress"]) if r["state"] == "running" else "",
                r["error"] if r["state"] in ("failed", "cancelled") else (r["result"] or ""),
                r["created_at"],
            )
            for r in rows
        ],
    )


@app.command("show")
def show(job_id: JobId, json_out: JsonOpt = False) -> None:
    """Everything about one job: spec or arguments, resources, attempts, result or error."""
    info = STATE.backend.job(job_id).as_json()
    if json_out:
        print_json(info)
        return
    out.print(f"[bold]job {info['id']}[/bold]  {info['kind']} {info['name']}  [bold]{info['state']}[/bold]")
    for key in ("priority", "resources", "threads", "attempts", "max_attempts", "pid", "created_at"):
        out.print(f"  {key}: {info[key]}")
    for key in ("started_at", "finished_at", "heartbeat_at", "result", "error", "log"):
        if info[key]:
            out.print(f"  {key}: {info[key]}", soft_wrap=True)
    if info["state"] == "running":
        out.print(f"  progress: {_progress_text(info['progress'])}")


@app.command("logs")
def logs(
    job_id: JobId,
    follow_: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the job ends.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Print a job's log (its worker's output and the kernel's lines about it)."""
    backend = STATE.backend
    if json_out:
        job = backend.wait_job(job_id) if follow_ else backend.job(job_id)
        print_json(backend.job_log(job.id).as_json())
        return
    if follow_:
        if not backend.job(job_id).finished and not backend.kernel_status().running:
            err.print("no kernel runs for this workspace: start one with `llmos kernel start`")
        for line in backend.follow_log(job_id):
            print(line, flush=True)
    else:
        sys.stdout.write(backend.job_log(job_id).log)


@app.command("cancel")
def cancel(job_id: JobId, json_out: JsonOpt = False) -> None:
    """Cancel a queued or running job (waits up to 5 s for a running one to end)."""
    job = STATE.backend.cancel_job(job_id, wait=5)
    if json_out:
        print_json(job.as_json())
    else:
        out.print(f"job {job.id} {'cancelled' if job.state == 'cancelled' else 'cancel requested'}")


@app.command("retry")
def retry(job_id: JobId, json_out: JsonOpt = False) -> None:
    """Queue a failed or cancelled job again; a training job resumes from its checkpoint."""
    job = STATE.backend.retry_job(job_id)
    report_queued(job, json_out)


@kernel_app.command("start")
def start(
    cpus: Annotated[int | None, typer.Option("--cpus", help="CPUs to schedule (default: all).")] = None,
    gpus: Annotated[int | None, typer.Option("--gpus", help="GPUs to schedule (default: all).")] = None,
    memory: Annotated[int | None, typer.Option("--memory", help="Memory in MB (default: all).")] = None,
    until_idle: Annotated[bool, typer.Option("--until-idle", help="Stop when no job is left.")] = False,
) -> None:
    """Run the scheduler in the foreground (Ctrl-C stops it; running jobs carry on)."""
    from llmos.core.errors import UsageError
    from llmos.ops.workspace import machine_capacity

    if STATE.remote:
        raise UsageError(
            "`llmos kernel start` runs on the workspace's machine; a server starts its own kernel"
        )
    cap = machine_capacity(cpus, gpus, memory)
    err.print(f"kernel for {STATE.workspace.home}: {cap.cpus} cpus, {cap.gpus} gpus, {cap.memory_mb} MB")
    try:
        STATE.workspace.run_kernel(cpus, gpus, memory, until_idle=until_idle)
    except KeyboardInterrupt:
        err.print("kernel stopped; running jobs carry on and the next kernel picks them up")


@kernel_app.command("status")
def status(json_out: JsonOpt = False) -> None:
    """Whether a kernel runs for this workspace, and how many jobs are queued or running."""
    info = STATE.backend.kernel_status()
    if json_out:
        print_json(info.as_json())
        return
    running = f"running (pid {info.pid})" if info.running else "not running"
    out.print(f"kernel {running}; {info.queued} queued, {info.active} running")


def _info(job: Any) -> Any:
    """A job as its result model (`submit_adapt` still hands back the store's row)."""
    from llmos.ops.jobs import JobInfo, job_info

    return job if isinstance(job, JobInfo) else job_info(job)
