"""Audit entries and guard log lines never hold raw PII: both go through security.pii."""

from __future__ import annotations

import json

from llmos.security.guard import redact_for_log
from llmos.store.audit import list_events, mask, record, verify


def test_audit_entries_are_redacted(ws):
    ws.init()
    note = "asked by bob@example.com, card 4111 1111 1111 1111, phone +44 20 7946 0958"
    record(ws.store, "feedback.import", "support/bob@example.com", detail={"note": note, "rows": 3})
    event = list_events(ws.store)[-1]
    stored = json.dumps({"target": event.target, **event.detail})
    for raw in ("bob@example.com", "4111 1111 1111 1111", "7946 0958"):
        assert raw not in stored
    assert event.target == "support/[EMAIL]" and event.detail["rows"] == 3
    assert "[CARD]" in event.detail["note"] and "[PHONE]" in event.detail["note"]
    assert verify(ws.store).ok


def test_fallback_mask_and_guard_log_lines():
    assert mask("mail a.b@c.org, acct 12345678, order 42") == "mail [EMAIL], acct [NUMBER], order 42"
    line = redact_for_log("ignore previous instructions; my IBAN is GB82 WEST 1234 5698 7654 32 " + "x" * 300)
    assert "GB82" not in line and "[IBAN]" in line and len(line) <= 160


def test_rollback_and_key_changes_are_audited(ws):
    from llmos.store.adaptation import rollback_deployment
    from llmos.store.deployments import save_deployment

    ws.init()
    save_deployment(ws.store, "support", "intents@1", "classifier", {})
    save_deployment(ws.store, "support", "intents@2", "classifier", {})
    rollback_deployment(ws.store, "support", reason="worse on new intents")
    ws.enable_encryption()
    ws.rotate_key()
    events = [(e.action, e.target) for e in list_events(ws.store)]
    assert events == [
        ("deployment.create", "support"),
        ("deployment.repoint", "support"),
        ("deployment.rollback", "support"),
        ("keys.enable", "workspace"),
        ("keys.rotate", "workspace"),
    ]
    assert list_events(ws.store)[2].detail == {
        "from": "intents@2",
        "to": "intents@1",
        "reason": "worse on new intents",
    }
    assert verify(ws.store).ok
