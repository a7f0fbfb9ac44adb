"""Storage of the customer-service assistant (F10): assistants, sessions, turns and the
hand-off queue. Every write is one transaction: a turn and the hand-off it causes land
together or not at all. Rows are per project (`project` column)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from llmos.core.errors import NotFoundError, UsageError
from llmos.core.util import utcnow
from llmos.store.db import Store
from llmos.store.schema import SupportAssistant, SupportHandoff, SupportSession, SupportTurn


def put_assistant(
    store: Store, project: str, name: str, config: dict[str, Any], actor: str
) -> SupportAssistant:
    """Create assistant `name`, or replace its configuration."""
    with store.transaction() as s:
        row = s.scalar(
            select(SupportAssistant).where(SupportAssistant.project == project, SupportAssistant.name == name)
        )
        if row is None:
            row = SupportAssistant(project=project, name=name, config=config, created_by=actor)
            s.add(row)
        else:
            row.config, row.updated_at = config, utcnow()
        s.flush()
        s.expunge(row)
        return row


def get_assistant(store: Store, project: str, name: str) -> SupportAssistant:
    with store.read() as s:
        row = s.scalar(
            select(SupportAssistant).where(SupportAssistant.project == project, SupportAssistant.name == name)
        )
        if row is None:
            known = s.scalars(select(SupportAssistant.name).where(SupportAssistant.project == project)).all()
            hint = (
                f"; assistants are {', '.join(known)}"
                if known
                else "; create one with `llmos support create`"
            )
            raise NotFoundError(f"assistant {name!r} not found{hint}")
        s.expunge(row)
        return row


def list_assistants(store: Store, project: str) -> list[SupportAssistant]:
    with store.read() as s:
        rows = list(
            s.scalars(
                select(SupportAssistant)
                .where(SupportAssistant.project == project)
                .order_by(SupportAssistant.name)
            )
        )
        for row in rows:
            s.expunge(row)
        return rows


def open_session(store: Store, project: str, assistant: str, actor: str) -> SupportSession:
    get_assistant(store, project, assistant)
    with store.transaction() as s:
        row = SupportSession(
            project=project, name=f"sess-{uuid.uuid4().hex[:20]}", assistant=assistant, created_by=actor
        )
        s.add(row)
        s.flush()
        s.expunge(row)
        return row


def get_session(store: Store, project: str, session: str) -> SupportSession:
    with store.read() as s:
        row = s.scalar(
            select(SupportSession).where(SupportSession.project == project, SupportSession.name == session)
        )
        if row is None:
            raise NotFoundError(
                f"support session {session!r} not found; open one with POST /v1/support/sessions"
            )
        s.expunge(row)
        return row


def turns(store: Store, project: str, session: str) -> list[SupportTurn]:
    with store.read() as s:
        rows = list(
            s.scalars(
                select(SupportTurn)
                .where(SupportTurn.project == project, SupportTurn.session == session)
                .order_by(SupportTurn.position)
            )
        )
        for row in rows:
            s.expunge(row)
        return rows


def transcript_of(rows: list[SupportTurn]) -> list[dict[str, Any]]:
    return [{"role": r.role, "content": r.text, **({"action": r.action} if r.action else {})} for r in rows]


def record_turn(
    store: Store,
    project: str,
    session: str,
    question: str,
    answer: str,
    action: str,
    request_id: str,
    details: dict[str, Any],
    handoff: tuple[str, str] | None = None,
) -> SupportHandoff | None:
    """The user's message and the assistant's reply, and with `handoff` (reason, detail)
    the session's hand-off carrying the transcript, in one transaction."""
    with store.transaction() as s:
        row = s.scalar(
            select(SupportSession)
            .where(SupportSession.project == project, SupportSession.name == session)
            .with_for_update()
        )
        if row is None:
            raise NotFoundError(f"support session {session!r} not found")
        if row.status != "open":
            raise UsageError(f"support session {session!r} was handed off to a person; open a new session")
        position = (
            s.scalar(
                select(func.max(SupportTurn.position)).where(
                    SupportTurn.project == project, SupportTurn.session == session
                )
            )
            or 0
        )
        s.add(
            SupportTurn(project=project, session=session, position=position + 1, role="user", text=question)
        )
        s.add(
            SupportTurn(
                project=project,
                session=session,
                position=position + 2,
                role="assistant",
                text=answer,
                action=action,
                request_id=request_id,
                details=details,
            )
        )
        row.turns += 1
        row.updated_at = utcnow()
        made = None
        if handoff is not None:
            s.flush()
            history = s.scalars(
                select(SupportTurn)
                .where(SupportTurn.project == project, SupportTurn.session == session)
                .order_by(SupportTurn.position)
            ).all()
            row.status = "handed-off"
            made = SupportHandoff(
                project=project,
                session=session,
                assistant=row.assistant,
                reason=handoff[0],
                detail=handoff[1],
                transcript=transcript_of(list(history)),
            )
            s.add(made)
            s.flush()
            s.expunge(made)
        return made


def list_handoffs(
    store: Store, project: str, assistant: str | None = None, status: str | None = None
) -> list[SupportHandoff]:
    with store.read() as s:
        query = select(SupportHandoff).where(SupportHandoff.project == project)
        if assistant is not None:
            query = query.where(SupportHandoff.assistant == assistant)
        if status is not None:
            query = query.where(SupportHandoff.status == status)
        rows = list(s.scalars(query.order_by(SupportHandoff.id)))
        for row in rows:
            s.expunge(row)
        return rows
