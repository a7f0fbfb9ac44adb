"""Deployment history, promotion and rollback in the store: one transaction each."""

from __future__ import annotations

import pytest

from llmos.core.errors import UsageError
from llmos.store.adaptation import deployment_history, list_decisions, record_decision, rollback_deployment
from llmos.store.deployments import get_deployment, save_deployment


def test_promote_rollback_and_history(ws):
    store = ws.store
    save_deployment(store, "d", "m@1", "classifier", {}, actor="ana", reason="first")
    record_decision(
        store,
        "d",
        decision="promote",
        candidate="m@2",
        parent="m@1",
        reasons=["better"],
        metrics={},
        actor="job",
    )
    row = get_deployment(store, "d")
    assert row.model == "m@2" and row.revision == 2
    record_decision(
        store, "d", decision="reject", candidate="m@3", parent="m@2", reasons=["worse"], metrics={}
    )
    assert get_deployment(store, "d").model == "m@2"  # a rejection re-points nothing

    rolled = rollback_deployment(store, "d", actor="ana", reason="complaints")
    assert (rolled.parent, rolled.candidate) == ("m@2", "m@1") and get_deployment(store, "d").model == "m@1"
    events = [(e.action, e.from_model, e.to_model, e.actor) for e in deployment_history(store, "d")]
    assert events == [
        ("deploy", None, "m@1", "ana"),
        ("promote", "m@1", "m@2", "job"),
        ("rollback", "m@2", "m@1", "ana"),
    ]
    assert [d.decision for d in list_decisions(store, "d")] == ["promote", "reject", "rollback"]
    # a second rollback undoes the first
    assert rollback_deployment(store, "d").candidate == "m@2"


def test_promotion_of_a_stale_candidate_writes_nothing(ws):
    store = ws.store
    save_deployment(store, "d", "m@1", "classifier", {})
    save_deployment(store, "d", "m@5", "classifier", {})  # re-pointed while m@1 was being adapted
    with pytest.raises(UsageError, match="deployment 'd' now serves m@5, not m@1"):
        record_decision(store, "d", decision="promote", candidate="m@2", parent="m@1", reasons=[], metrics={})
    assert get_deployment(store, "d").model == "m@5" and list_decisions(store, "d") == []
    assert len(deployment_history(store, "d")) == 2


def test_rollback_needs_an_earlier_model(ws):
    save_deployment(ws.store, "d", "m@1", "classifier", {})
    with pytest.raises(UsageError, match="deployment 'd' has no earlier model to return to"):
        rollback_deployment(ws.store, "d")
    assert get_deployment(ws.store, "d").revision == 1
