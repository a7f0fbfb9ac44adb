"""Deployments: served names and the model each points at.

Deploying an existing name re-points it in one transaction (the row's `model`,
`kind` and `options` change together and `revision` goes up), which is what makes
re-pointing atomic for a running server: it reads one row and gets either the old
target or the new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from llmos.core.errors import NotFoundError
from llmos.core.util import check_name, utcnow
from llmos.store.audit import record
from llmos.store.db import Store
from llmos.store.schema import Deployment, DeploymentEvent


@dataclass(frozen=True)
class DeploymentKind:
    """What a deployment of this kind serves. The model kinds (`models/kinds/`) name the
    deployment kind that serves them; everything that treats deployments differently asks
    these flags, not the name."""

    name: str
    route: str  # where its requests go, for messages
    labels: bool = False  # predicts labels (feedback names a label; monitored, adapted)
    generates: bool = False  # writes text (feedback names an answer)
    embeds: bool = False  # returns vectors
    recommends: bool = False  # ranks items for a user (`/recommend`)

    @property
    def feedback_column(self) -> str:
        return "answer" if self.generates else "label"


DEPLOYMENT_KINDS: dict[str, DeploymentKind] = {
    k.name: k
    for k in (
        DeploymentKind("classifier", "/v1/deployments/{name}/predict", labels=True),
        DeploymentKind("generation", "/v1/chat/completions or /v1/completions", generates=True),
        DeploymentKind("embedding", "/v1/embeddings", embeds=True),
        DeploymentKind("recommender", "/v1/deployments/{name}/recommend", recommends=True),
    )
}


def save_deployment(
    store: Store,
    name: str,
    model: str,
    kind: str,
    options: dict[str, Any],
    actor: str = "",
    reason: str = "deploy",
) -> Deployment:
    """Create the deployment `name`, or re-point it when it exists; the change joins the
    deployment's history (`deployment_events`) in the same transaction."""
    check_name(name, "deployment name")
    with store.transaction() as session:
        row = session.scalars(select(Deployment).where(Deployment.name == name)).first()
        before = None if row is None else row.model
        if row is None:
            row = Deployment(name=name, model=model, kind=kind, options=options, revision=1)
            session.add(row)
        else:
            row.model, row.kind, row.options = model, kind, options
            row.revision += 1
            row.updated_at = utcnow()
        session.add(
            DeploymentEvent(
                deployment=name,
                action="deploy",
                from_model=before,
                to_model=model,
                actor=actor,
                reason=reason,
            )
        )
        session.flush()
    action = "deployment.create" if row.revision == 1 else "deployment.repoint"
    record(store, action, name, detail={"model": model, "revision": row.revision})
    return row


def find_deployment(store: Store, name: str) -> Deployment | None:
    with store.read() as session:
        return session.scalars(select(Deployment).where(Deployment.name == name)).first()


def get_deployment(store: Store, name: str) -> Deployment:
    row = find_deployment(store, name)
    if row is None:
        known = ", ".join(d.name for d in list_deployments(store)) or "none yet"
        raise NotFoundError(
            f"deployment {name!r} not found (deployments: {known}); create it with `llmos deploy`"
        )
    return row


def list_deployments(store: Store) -> list[Deployment]:
    with store.read() as session:
        return list(session.scalars(select(Deployment).order_by(Deployment.name)))


def delete_deployment(store: Store, name: str) -> Deployment:
    row = get_deployment(store, name)
    with store.transaction() as session:
        session.delete(session.get(Deployment, row.id))
    record(store, "deployment.delete", name, detail={"model": row.model})
    return row
