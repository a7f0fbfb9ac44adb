"""`llmos schedule add|list|show|pause|resume|remove`: periodic jobs the kernel submits,
locally or (`--url`) on a server.

    llmos schedule add nightly --every 1h -- adapt support --on-drift
    llmos schedule add retrain --cron "0 3 * * *" -- train spec.yaml
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from llmos.cli.output import out, print_json, table
from llmos.cli.state import STATE

app = typer.Typer(help="Periodic jobs: every N seconds or on a cron expression.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Name = Annotated[str, typer.Argument(help="The schedule's name.")]


def _period(info: Any) -> str:
    return f"every {info.every}s" if info.every is not None else f"cron {info.cron}"


def _job_words(job: list[str]) -> list[str]:
    """A `train SPEC` whose SPEC is a file here is sent as the file's text, so the same
    words work against a server."""
    if len(job) >= 2 and job[0] == "train":
        path = Path(job[1])
        if path.is_file():
            return [job[0], path.read_text(), *job[2:]]
    return job


@app.command("add")
def add(
    name: Name,
    job: Annotated[
        list[str] | None,
        typer.Argument(
            help="After `--`: adapt DEPLOYMENT [--on-drift ...], train SPEC, eval MODEL --data D "
            "or predict MODEL --data D."
        ),
    ] = None,
    every: Annotated[str | None, typer.Option("--every", help="10s, 5m, 1h or 1d.")] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="Five cron fields, UTC: '*/5 * * * *'.")] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Add it paused.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Submit a job every --every or on --cron; the first run is one period from now. A
    missed run (the kernel was down) runs once when the kernel is back."""
    info = STATE.backend.add_schedule(name, _job_words(job or []), every=every, cron=cron, paused=paused)
    if json_out:
        print_json(info.as_json())
        return
    out.print(
        f"schedule {info.name}: {info.command} {_period(info)}; next run {info.as_json()['next_run_at']}"
    )


@app.command("list")
def list_(json_out: JsonOpt = False) -> None:
    """Every schedule with its next and last run."""
    rows = STATE.backend.schedules()
    if json_out:
        print_json([r.as_json() for r in rows])
        return
    table(
        None,
        ["name", "job", "when", "paused", "next run", "last run", "runs", "last outcome"],
        [
            (
                r.name,
                r.command,
                _period(r),
                "yes" if r.paused else "",
                (j := r.as_json())["next_run_at"],
                j["last_run_at"] or "",
                r.runs,
                r.last_outcome or "",
            )
            for r in rows
        ],
    )


@app.command("show")
def show(name: Name, json_out: JsonOpt = False) -> None:
    """One schedule: its job, period, next and last run, last outcome."""
    info = STATE.backend.schedule(name).as_json()
    if json_out:
        print_json(info)
        return
    out.print(
        f"[bold]schedule {info['name']}[/bold]  {info['command']}  {'paused' if info['paused'] else ''}"
    )
    for key in ("every", "cron", "next_run_at", "last_run_at", "last_job_id", "last_outcome", "runs"):
        if info[key] is not None:
            out.print(f"  {key}: {info[key]}", soft_wrap=True)
    out.print(f"  created_by: {info['created_by']} at {info['created_at']}")


def _changed(info: Any, what: str, json_out: bool) -> None:
    if json_out:
        print_json(info.as_json())
    else:
        out.print(f"schedule {info.name} {what}")


@app.command("pause")
def pause(name: Name, json_out: JsonOpt = False) -> None:
    """Stop a schedule firing until it is resumed."""
    _changed(STATE.backend.pause_schedule(name), "paused", json_out)


@app.command("resume")
def resume(name: Name, json_out: JsonOpt = False) -> None:
    """Fire a paused schedule again from its next occurrence."""
    info = STATE.backend.resume_schedule(name)
    _changed(info, f"resumed; next run {info.as_json()['next_run_at']}", json_out)


@app.command("remove")
def remove(name: Name, json_out: JsonOpt = False) -> None:
    """Delete a schedule (the jobs it submitted stay)."""
    _changed(STATE.backend.remove_schedule(name), "removed", json_out)
