"""`llmos audit list [--since] [--limit] [--project]` and `llmos audit verify` (locally, or a server's
log with `--url` and an admin's token)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

import typer

from llmos.cli.output import out, print_json, table
from llmos.cli.state import STATE
from llmos.core.errors import LlmosError, UsageError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
app = typer.Typer(help="The tamper-evident audit log of the workspace.", no_args_is_help=True)


class AuditTampered(LlmosError):
    """`llmos audit verify` found an edited, deleted or reordered entry."""

    exit_code = 11


def parse_since(text: str) -> datetime:
    """`1h`, `30m`, `7d` ago, or an ISO date/time (UTC unless it says otherwise)."""
    from llmos.security.identities import parse_duration

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        if not text[:1].isdigit() or text.strip()[-1:].isdigit():
            raise UsageError(f"--since {text!r}: give a duration such as 1h or 7d, or an ISO date") from None
        return datetime.now(timezone.utc) - parse_duration(text, "--since")
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@app.command("list")
def list_(
    since: Annotated[
        str | None, typer.Option("--since", help="Only events since then: 1h, 7d, or an ISO date/time.")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the newest N events.")] = None,
    project: Annotated[
        str | None, typer.Option("--project", help="Only this project's events (default: every project's).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Audit events, oldest first: who did what to what, when, and how it ended."""
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, not {limit}")
    moment = parse_since(since) if since else None
    events = [e.as_json() for e in STATE.backend.audit_events(moment, limit, project)]
    if json_out:
        print_json(events)
        return
    table(None, ["id", "at (UTC)", "actor", "action", "target", "outcome", "detail"], [
        (e["id"], e["at"][:19], e["actor"], e["action"], e["target"], e["outcome"],
         " ".join(f"{k}={v}" for k, v in e["detail"].items()))
        for e in events
    ])  # fmt: skip


@app.command("verify")
def verify(json_out: JsonOpt = False) -> None:
    """Check the hash chain; exit non-zero naming the first edited, deleted or reordered entry.

    `--json` also prints the head hash: recorded elsewhere, it shows later whether entries
    were cut off the end (which a chain alone cannot tell)."""
    verdict = STATE.backend.verify_audit()
    if json_out:
        print_json(verdict.as_json())
        if not verdict.ok:
            raise typer.Exit(AuditTampered.exit_code)
        return
    if not verdict.ok:
        raise AuditTampered(verdict.message)
    out.print(verdict.message)
