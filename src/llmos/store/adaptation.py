"""What adaptation writes: the gate's decisions and the re-pointings they cause.

Promotion and rollback each re-point a deployment, append the deployment's history and
record the decision in one transaction, so a running server (which reads the one
deployment row) sees the old model or the new one, and the history never disagrees
with what is served.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from llmos.core.errors import NotFoundError, UsageError
from llmos.core.util import iso, utcnow
from llmos.store.audit import record
from llmos.store.db import Store
from llmos.store.schema import AdaptDecision, Deployment, DeploymentEvent


def _deployment(session: Any, name: str) -> Deployment:
    row = session.scalars(select(Deployment).where(Deployment.name == name)).first()
    if row is None:
        raise NotFoundError(f"deployment {name!r} not found; create it with `llmos deploy`")
    return row


def _repoint(session: Any, row: Deployment, model: str, action: str, actor: str, reason: str) -> str:
    before = row.model
    row.model = model
    row.revision += 1
    row.updated_at = utcnow()
    session.add(
        DeploymentEvent(
            deployment=row.name, action=action, from_model=before, to_model=model, actor=actor, reason=reason
        )
    )
    return before


def record_decision(
    store: Store,
    deployment: str,
    *,
    decision: str,
    candidate: str,
    parent: str | None,
    reasons: list[str],
    metrics: dict[str, Any],
    last_feedback_id: int | None = None,
    job_id: int | None = None,
    actor: str = "",
) -> AdaptDecision:
    """Record the gate's decision; `promote` also re-points the deployment to the candidate,
    in the same transaction (the one place where a candidate goes live)."""
    with store.transaction() as session:
        if decision == "promote":
            row = _deployment(session, deployment)
            if row.model != parent:
                raise UsageError(
                    f"deployment {deployment!r} now serves {row.model}, not {parent}: "
                    "it was re-pointed while adapting; run `llmos adapt` again"
                )
            _repoint(session, row, candidate, "promote", actor, "; ".join(reasons))
        entry = AdaptDecision(
            deployment=deployment,
            decision=decision,
            candidate=candidate,
            parent=parent,
            reasons=reasons,
            metrics=metrics,
            last_feedback_id=last_feedback_id,
            job_id=job_id,
            actor=actor,
        )
        session.add(entry)
        session.flush()
    detail = {"candidate": candidate, "parent": parent, "reasons": reasons, "job": job_id}
    record(store, f"adapt.{decision}", deployment, detail=detail)
    return entry


def rollback_deployment(store: Store, deployment: str, actor: str = "", reason: str = "") -> AdaptDecision:
    """Re-point `deployment` to the model it served before its latest re-pointing (a second
    rollback undoes the first). A deployment never re-pointed has nothing to return to."""
    with store.transaction() as session:
        row = _deployment(session, deployment)
        last = session.scalars(
            select(DeploymentEvent)
            .where(DeploymentEvent.deployment == deployment, DeploymentEvent.from_model.is_not(None))
            .order_by(DeploymentEvent.id.desc())
        ).first()
        if last is None or last.from_model is None or last.to_model != row.model:
            raise UsageError(
                f"deployment {deployment!r} has no earlier model to return to (it serves "
                f"{row.model} and was never re-pointed); see `llmos adapt {deployment} --history`"
            )
        target = last.from_model
        why = reason or f"rollback of {last.action} to {last.to_model}"
        before = _repoint(session, row, target, "rollback", actor, why)
        entry = AdaptDecision(
            deployment=deployment,
            decision="rollback",
            candidate=target,
            parent=before,
            reasons=[why],
            metrics={},
            actor=actor,
        )
        session.add(entry)
        session.flush()
    record(store, "deployment.rollback", deployment, detail={"from": before, "to": target, "reason": why})
    return entry


def decision_info(d: AdaptDecision) -> dict[str, Any]:
    """A decision as the CLI's --json and the SDK show it."""
    return {
        "id": d.id,
        "decision": d.decision,
        "model": d.candidate,
        "parent": d.parent,
        "reasons": d.reasons,
        "metrics": d.metrics,
        "last_feedback_id": d.last_feedback_id,
        "job": d.job_id,
        "actor": d.actor,
        "at": iso(d.created_at),
    }


def list_decisions(store: Store, deployment: str) -> list[AdaptDecision]:
    with store.read() as session:
        query = select(AdaptDecision).where(AdaptDecision.deployment == deployment)
        return list(session.scalars(query.order_by(AdaptDecision.id)))


def deployment_history(store: Store, deployment: str) -> list[DeploymentEvent]:
    with store.read() as session:
        query = select(DeploymentEvent).where(DeploymentEvent.deployment == deployment)
        return list(session.scalars(query.order_by(DeploymentEvent.id)))


def last_feedback_used(store: Store, deployment: str) -> int:
    """The newest feedback id an earlier adapt of `deployment` used (0 if none): the next
    adapt reads only feedback after it, whether that adapt was promoted or rejected."""
    with store.read() as session:
        query = select(func.max(AdaptDecision.last_feedback_id)).where(AdaptDecision.deployment == deployment)
        return int(session.scalar(query) or 0)
