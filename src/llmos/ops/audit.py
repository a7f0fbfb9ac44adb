"""The audit log: list its events (the newest N with `limit`) and verify its hash chain.
Reading it is `audit:read`, which only the admin role holds (it names every actor)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import Field

from llmos.ops.context import Context
from llmos.ops.registry import operation
from llmos.ops.results import Result, Timestamp


class AuditEventInfo(Result):
    id: int
    at: Timestamp
    actor: str = Field(description="Who: a user, `local:<os user>`, `token:<prefix>` or `anonymous`")
    action: str
    target: str
    outcome: str = Field(description="ok, failed or denied")
    detail: dict[str, Any] = Field(default_factory=dict)
    hash: str


class AuditVerdict(Result):
    ok: bool
    events: int = Field(description="How many events were checked")
    bad_id: int | None = Field(None, description="The first edited, deleted or reordered entry")
    problem: str | None = Field(None, description="edited, deleted or reordered")
    message: str
    head: str | None = Field(
        None, description="The last entry's hash (when ok): kept elsewhere, it reveals a cut-off tail"
    )


@operation("audit:read")
def audit_events(
    ctx: Context, since: datetime | None = None, limit: int | None = None, project: str | None = None
) -> list[AuditEventInfo]:
    """Audit events, oldest first: those at or after `since` (UTC unless it says), of one
    `project` (every project's when None), and of them the newest `limit`."""
    from llmos.core.errors import UsageError
    from llmos.store.audit import list_events

    if limit is not None and limit < 1:
        raise UsageError(f"limit must be at least 1, not {limit}")
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    if project is not None:
        _known_project(ctx, project)
    found = list_events(ctx.store, since, limit, newest=True, project=project)
    return [AuditEventInfo(**e.as_dict()) for e in found]


def _known_project(ctx: Context, project: str) -> None:
    """A project that exists, or existed (a deleted project's events stay in the log);
    else the 404 of an unknown project, naming it."""
    from llmos.store.audit import list_events
    from llmos.store.projects import check_project_name, get_project

    check_project_name(project)
    if not list_events(ctx.store, limit=1, project=project):
        get_project(ctx.store, project)


@operation("audit:read")
def verify_audit(ctx: Context) -> AuditVerdict:
    """Check the hash chain; the verdict names the first edited, deleted or reordered entry."""
    from llmos.store.audit import verify

    v = verify(ctx.store)
    return AuditVerdict(
        ok=v.ok, events=v.count, bad_id=v.bad_id, problem=v.problem, message=v.message,
        head=v.head if v.ok else None,
    )  # fmt: skip


def record_event(store: Any, action: str, target: str, outcome: str, detail: dict[str, Any]) -> None:
    """Append one event in the name of the current actor (what an interface records about
    a request itself, such as an allowed change that failed)."""
    from llmos.store.audit import record

    record(store, action, target, outcome, detail)


def install_redactor() -> None:
    """Audit entries go through the security layer's PII redactor (the store, below the
    security layer, cannot import it; see `store.audit.set_redactor`)."""
    from llmos.security.pii import redact_for_log
    from llmos.store.audit import set_redactor

    set_redactor(redact_for_log)
