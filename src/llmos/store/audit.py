"""The audit log: an append-only, hash-chained record of every state-changing operation.

Each entry holds who (`actor`), what (`action`), on what (`target`), when (`at`), how it
ended (`outcome`) and a small `detail` dict, plus the hash of the entry before it
(`prev_hash`) and its own hash over a canonical JSON of all those fields. Editing an
entry breaks its own hash; deleting one leaves its successor pointing at a hash that no
longer exists; moving one puts an entry after something that is not its predecessor.
`verify` names the first entry where any of that happened.

Appends are serialised: on SQLite one `BEGIN IMMEDIATE` transaction reads the last hash
and inserts (the write lock is taken before the read), so the server and CLI processes
and their threads never fork the chain; `prev_hash` is also UNIQUE, so a fork cannot be
stored even by a writer that skipped the lock. On other databases the table is locked
for the duration of the append.

`record(action, target, ...)` is the one hook every package calls after it changed
state; the actor comes from `acting_as` (the HTTP policy sets the authenticated user),
else `local:<os user>` for the CLI and the SDK. `record` passes the target and every text
in `detail` through a redactor first, so entries never hold raw PII: by default a mask of
e-mail addresses and long digit runs; the SDK installs the security layer's PII redactor
(`set_redactor(llmos.security.pii.redact_for_log)`), which the store cannot import.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, insert, select, text

from llmos.core.errors import StoreError
from llmos.store.db import Store
from llmos.store.schema import AuditEvent
from llmos.store.scope import DEFAULT_PROJECT, current_project

GENESIS = "0" * 64
OUTCOMES = ("ok", "failed", "denied")
FIELDS = ("at", "actor", "action", "target", "outcome", "detail", "prev_hash")
log = logging.getLogger("llmos.audit")

_actor: ContextVar[str | None] = ContextVar("llmos_audit_actor", default=None)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DIGITS = re.compile(r"\d[\d ()+./-]{4,}\d")


def mask(text: str) -> str:
    """The fallback redactor: e-mail addresses and runs of six or more digits masked."""
    return _DIGITS.sub("[NUMBER]", _EMAIL.sub("[EMAIL]", text))


_redactor: Callable[[str], str] = mask


def set_redactor(redactor: Callable[[str], str]) -> None:
    """Install the function `record` passes targets and detail texts through."""
    global _redactor
    _redactor = redactor


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return _redactor(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(v) for v in value]
    return value


def local_actor() -> str:
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (some containers)
        return "local:unknown"


def current_actor() -> str:
    return _actor.get() or local_actor()


def set_actor(actor: str | None) -> None:
    """Make `actor` the author of the events this context records (the HTTP policy calls
    this per request; each request runs in its own context, so it does not leak)."""
    _actor.set(actor)


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(fields: dict[str, str]) -> str:
    """The hash of an entry: its FIELDS, and its project when that is not `default` (so the
    entries written before projects keep their hashes, and moving an entry between projects
    breaks its hash either way)."""
    covered = {k: fields[k] for k in FIELDS}
    if fields.get("project", DEFAULT_PROJECT) != DEFAULT_PROJECT:
        covered["project"] = fields["project"]
    return hashlib.sha256(canonical(covered).encode()).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Event:
    id: int
    at: str
    actor: str
    action: str
    target: str
    outcome: str
    detail: dict[str, Any]
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "detail": self.detail,
            "hash": self.hash,
        }


@contextmanager
def _serialised(store: Store) -> Iterator[Connection]:
    """A connection holding the database's write lock for one append (or bulk append)."""
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
    else:
        with store.engine.begin() as conn:
            conn.execute(text("LOCK TABLE audit_events IN SHARE ROW EXCLUSIVE MODE"))
            yield conn


def _last_hash(conn: Connection) -> str:
    last = conn.execute(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).scalar()
    return last or GENESIS


def _rows(prev: str, events: list[dict[str, Any]]) -> list[dict[str, str]]:
    rows = []
    for event in events:
        if event["outcome"] not in OUTCOMES:
            raise StoreError(f"audit outcome {event['outcome']!r} is not one of {', '.join(OUTCOMES)}")
        fields = {
            "at": event.get("at") or _now(),
            "actor": event.get("actor") or current_actor(),
            "action": event["action"],
            "target": event["target"],
            "outcome": event["outcome"],
            "detail": canonical(event.get("detail") or {}),
            "prev_hash": prev,
            "project": event.get("project") or current_project(),
        }
        fields["hash"] = prev = entry_hash(fields)
        rows.append(fields)
    return rows


def append_event(
    store: Store,
    action: str,
    target: str,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
    actor: str | None = None,
) -> Event:
    """Append one event to the chain and return it."""
    event = {"action": action, "target": target, "outcome": outcome, "detail": detail, "actor": actor}
    with _serialised(store) as conn:
        (row,) = _rows(_last_hash(conn), [event])
        new_id = conn.execute(insert(AuditEvent).values(**row)).inserted_primary_key[0]  # type: ignore[index]
    return Event(new_id, row["at"], row["actor"], action, target, outcome, detail or {}, row["hash"])


def append_many(store: Store, events: list[dict[str, Any]]) -> int:
    """Append many events in one transaction (imports of old logs, tests, benchmarks)."""
    with _serialised(store) as conn:
        rows = _rows(_last_hash(conn), events)
        if rows:
            conn.execute(insert(AuditEvent), rows)
    return len(rows)


def record(
    store: Store, action: str, target: str, outcome: str = "ok", detail: dict[str, Any] | None = None
) -> None:
    """The hook for every state-changing operation (import, train, deploy, promote, rollback,
    key rotation, user and token changes). The operation already happened, so a failure to
    audit it is logged loudly rather than raised over the operation's own result."""
    try:
        append_event(store, action, _redactor(target), outcome, _redacted(detail))
    except Exception as exc:  # the store is unreachable or locked beyond busy_timeout
        log.error("could not append audit event %s %s: %s", action, target, exc)


def list_events(
    store: Store,
    since: datetime | None = None,
    limit: int | None = None,
    newest: bool = False,
    project: str | None = None,
) -> list[Event]:
    """Events in order, optionally only those at or after `since` (UTC) or of one `project`;
    `limit` keeps the first N, or with `newest` the last N (still listed oldest first, as
    `tail` does)."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc() if newest else AuditEvent.id)
    if project is not None:
        query = query.where(AuditEvent.project == project)
    if since is not None:
        moment = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        query = query.where(
            AuditEvent.at >= moment.astimezone(timezone.utc).isoformat(timespec="microseconds")
        )
    if limit is not None:
        query = query.limit(limit)
    with store.read() as session:
        events = [
            Event(r.id, r.at, r.actor, r.action, r.target, r.outcome, json.loads(r.detail), r.hash)
            for r in session.scalars(query)
        ]
    return events[::-1] if newest else events


@dataclass(frozen=True)
class Verdict:
    ok: bool
    count: int
    bad_id: int | None = None
    problem: str | None = None  # edited | deleted | reordered
    message: str = ""
    head: str = GENESIS  # the last entry's hash: kept elsewhere, it also reveals a cut-off tail


def verify(store: Store) -> Verdict:
    """Walk the chain in id order and name the first entry that was edited, deleted
    (its successor's predecessor is gone) or reordered (its predecessor is elsewhere)."""
    columns = [getattr(AuditEvent, name) for name in (*FIELDS, "project", "hash", "id")]
    with store.engine.connect() as conn:
        rows = conn.execute(select(*columns).order_by(AuditEvent.id)).all()
    known = {r.hash for r in rows}
    prev = GENESIS
    for r in rows:
        fields = {k: getattr(r, k) for k in (*FIELDS, "project")}
        if entry_hash(fields) != r.hash:
            return Verdict(
                False,
                len(rows),
                r.id,
                "edited",
                f"audit entry {r.id} was edited: its hash does not match its fields",
            )
        if r.prev_hash != prev:
            if r.prev_hash in known:
                return Verdict(
                    False, len(rows), r.id, "reordered",
                    f"audit entry {r.id} was reordered: its predecessor is stored elsewhere in the log",
                )  # fmt: skip
            return Verdict(
                False, len(rows), r.id, "deleted",
                f"audit entry {r.id}: the entry before it was deleted (or rewritten with a new hash)",
            )  # fmt: skip
        prev = r.hash
    return Verdict(True, len(rows), message=f"verified {len(rows)} events", head=prev)
