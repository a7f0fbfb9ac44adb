"""`llmos project create|list|show|delete|grant|revoke|quota`: the projects of a
workspace (F17), locally or (`--url`) on a server. Every other verb acts in the project
that the global `--project` (or LLMOS_PROJECT) names.

    llmos project create support --description "the support team"
    llmos project grant support alice --role developer
    llmos project quota support --concurrent-jobs 1 --cpu-minutes 10 --gpu-hours 2
    llmos --project support data import tickets.csv --name intents
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from llmos.cli.output import out, print_json, table
from llmos.cli.state import STATE

app = typer.Typer(help="Projects: namespaces with roles and quotas of their own.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Name = Annotated[str, typer.Argument(help="The project's name.")]


def _limit(value: Any) -> str:
    return "-" if value is None else f"{value:g}"


def _show(info: Any, json_out: bool) -> None:
    if json_out:
        print_json(info.as_json())
        return
    out.print(f"project {info.name}" + (f": {info.description}" if info.description else ""))
    if info.counts:
        out.print(", ".join(f"{n} {what}" for what, n in info.counts.items()))
    rows = [(key, _limit(info.quotas.get(key)), _limit(info.usage.get(key))) for key in info.quotas]
    table("quotas", ["quota", "limit", "used"], rows)
    if info.members:
        table("members", ["user", "role"], [(m.user, m.role) for m in info.members])
    if info.note:
        out.print(f"note: {info.note}")


@app.command("create")
def create(
    name: Name,
    description: Annotated[str, typer.Option("--description", help="What the project is for.")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Create a project (admins)."""
    info = STATE.backend.project_create(name, description)
    if json_out:
        print_json(info.as_json())
        return
    out.print(f"created project {info.name}; use it with --project {info.name}")


@app.command("list")
def list_(json_out: JsonOpt = False) -> None:
    """The projects you have a role in (an admin: all)."""
    rows = STATE.backend.projects()
    if json_out:
        print_json([r.as_json() for r in rows])
        return
    table(
        "projects",
        ["name", "description", "created by"],
        [(r.name, r.description, r.created_by) for r in rows],
    )


@app.command("show")
def show(name: Name, json_out: JsonOpt = False) -> None:
    """A project's quotas and today's usage, members and what it holds."""
    _show(STATE.backend.project_show(name), json_out)


@app.command("delete")
def delete(name: Name, json_out: JsonOpt = False) -> None:
    """Delete a project without deployments (admins)."""
    info = STATE.backend.project_delete(name)
    if json_out:
        print_json(info.as_json())
        return
    out.print(f"deleted project {info.name}")


@app.command("grant")
def grant(
    name: Name,
    user: Annotated[str, typer.Argument(help="The user.")],
    role: Annotated[str, typer.Option("--role", help="developer or viewer.")] = "developer",
    json_out: JsonOpt = False,
) -> None:
    """Give a user a role in a project (admins)."""
    info = STATE.backend.project_member_add(name, user, role)
    if json_out:
        print_json(info.as_json())
        return
    out.print(f"{user} is now a {role} in project {name}")


@app.command("revoke")
def revoke(
    name: Name, user: Annotated[str, typer.Argument(help="The user.")], json_out: JsonOpt = False
) -> None:
    """Take a user's role in a project away (admins)."""
    info = STATE.backend.project_member_remove(name, user)
    if json_out:
        print_json(info.as_json())
        return
    out.print(f"{user} has no role in project {name} any more")


@app.command("quota")
def quota(
    name: Name,
    concurrent_jobs: Annotated[
        int | None, typer.Option("--concurrent-jobs", help="Jobs running at once (0: no limit).")
    ] = None,
    cpu_minutes: Annotated[
        float | None, typer.Option("--cpu-minutes", help="CPU-minutes of jobs per UTC day.")
    ] = None,
    requests: Annotated[int | None, typer.Option("--requests", help="Served requests per UTC day.")] = None,
    stored_bytes: Annotated[
        int | None, typer.Option("--stored-bytes", help="Bytes of dataset and prediction versions.")
    ] = None,
    gpu_hours: Annotated[
        float | None, typer.Option("--gpu-hours", help="GPU-hours of jobs per UTC day.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Set a project's quotas (admins); 0 removes one, an omitted one is unchanged."""
    info = STATE.backend.project_quota(name, concurrent_jobs, cpu_minutes, requests, stored_bytes, gpu_hours)
    _show(info, json_out)
