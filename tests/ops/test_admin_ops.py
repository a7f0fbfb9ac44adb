"""The admin, feedback, monitoring and adaptation system calls as a user relies on them:
the permission table decides for every caller, bad input is one line and stores nothing,
and audit events name the actor."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from llmos.core.errors import DataError, NotFoundError, UsageError
from llmos.ops import adaptation, audit, feedback, keys, monitoring, users
from llmos.ops.context import Actor, Context
from llmos.serve.errors import Forbidden
from llmos.store.audit import list_events
from tests.conftest import snapshot


def as_(ws, role: str, name: str = "someone") -> Context:
    return Context(ws.store, Actor(name, role))


def test_users_and_tokens_are_admin_only_and_keep_the_identity_rules(ws):
    root = as_(ws, "admin", "root")
    assert users.add_user(root, "root", "admin").role == "admin"
    dev = users.add_user(root, "dev", "developer")
    assert (dev.name, dev.role, dev.active_tokens, dev.removed) == ("dev", "developer", 0, False)
    token = users.create_token(root, "dev", "app", "30d", ["chat"])
    assert token.token.startswith("llmos_") and token.prefix == token.token[:12]
    assert token.expires_at is not None and token.expires_at.utcoffset().total_seconds() == 0
    assert json.loads(token.model_dump_json())["expires_at"].endswith("+00:00")
    assert "token" not in users.tokens(root)[0].as_json()  # never listed again
    assert {u.name: u.active_tokens for u in users.users(root)} == {"dev": 1, "root": 0}
    for role in ("developer", "viewer", "app"):
        with pytest.raises(Forbidden, match="users:admin"):
            users.create_token(as_(ws, role), "root", "admin")
    with pytest.raises(UsageError, match="cannot hold an admin token"):
        users.create_token(root, "dev", "admin")
    with pytest.raises(NotFoundError, match="user 'ghost' not found"):
        users.remove_user(root, "ghost")
    with pytest.raises(UsageError, match="last admin"):
        users.remove_user(root, "root")
    assert users.revoke_token(root, str(token.id)).state == "revoked"
    removed = users.remove_user(root, "dev")
    assert removed.removed and removed.name == "dev"
    events = list_events(ws.store)
    changes = [e.action for e in events if e.action != "auth.forbidden"]
    assert changes == ["user.add", "user.add", "token.create", "token.revoke", "user.remove"]
    assert {e.actor for e in events if e.action.startswith(("user.", "token."))} == {"root"}
    denied = [e for e in events if e.action == "auth.forbidden"]
    assert len(denied) == 3 and {e.detail["permission"] for e in denied} == {"users:admin"}


def test_audit_limit_shows_the_newest_events_and_verify_checks_the_chain(ws):
    root = as_(ws, "admin", "root")
    for name in ("a1", "a2", "a3", "a4"):
        users.add_user(root, name, "viewer")
    every = audit.audit_events(root)
    newest = audit.audit_events(root, limit=2)
    assert [e.target for e in newest] == ["a3", "a4"] and newest == every[-2:]
    assert audit.audit_events(root, since=every[-1].at) == [e for e in every if e.at >= every[-1].at]
    assert audit.audit_events(root, since=datetime(2999, 1, 1)) == []
    verdict = audit.verify_audit(root)
    assert verdict.ok and verdict.events == 4 and verdict.head == every[-1].hash
    with pytest.raises(UsageError, match="limit must be at least 1"):
        audit.audit_events(root, limit=0)
    with pytest.raises(Forbidden, match="audit:read"):
        audit.audit_events(as_(ws, "developer"))
    with ws.store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_events SET target = 'x' WHERE id = 2")
    broken = audit.verify_audit(root)
    assert (broken.ok, broken.bad_id, broken.problem, broken.head) == (False, 2, "edited", None)


def test_keys_status_and_rotation_are_admin_only(ws):
    root = as_(ws, "admin")
    status = keys.encryption_status(root)
    assert status.encrypted is False and status.key_id is None
    with pytest.raises(UsageError, match="not encrypted"):
        keys.rotate_key(root)
    for role in ("developer", "viewer"):
        with pytest.raises(Forbidden, match="keys:admin"):
            keys.encryption_status(as_(ws, role))
    enabled = keys.enable_encryption(root)
    assert enabled.encrypted and enabled.created_key_file
    rotated = keys.rotate_key(root)
    assert rotated.old_key_id == enabled.key_id and rotated.key_id != enabled.key_id


@pytest.fixture
def chat(ws, tiny_lm_dir):
    ws.deploy(str(tiny_lm_dir), "chat")
    return ws


MESSAGES = json.dumps([{"role": "user", "content": "hello"}])


def test_feedback_import_is_all_or_nothing_and_lists_newest_first(chat, tmp_path):
    ws, dev = chat, as_(chat, "developer", "dev")
    bad = tmp_path / "bad.jsonl"
    rows = [{"messages": MESSAGES, "answer": "hi"}, {"messages": MESSAGES}]
    bad.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    before = snapshot(ws.home)
    with pytest.raises(DataError, match=r"bad.jsonl row 2: a new row without a request id needs a label"):
        feedback.import_feedback(dev, bad, "chat")
    assert snapshot(ws.home) == before  # nothing stored, not even an audit event
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps({"messages": MESSAGES, "answer": a}) for a in ("one", "two")) + "\n")
    done = feedback.import_feedback(dev, good, "chat")
    assert (done.imported, done.on_requests, done.new_rows) == (2, 0, 2)
    listed = feedback.feedback(as_(ws, "viewer"), "chat")
    assert [f.answer for f in listed] == ["two", "one"] and listed[0].source == "import"
    assert [f.answer for f in feedback.feedback(as_(ws, "viewer"), "chat", limit=1)] == ["two"]
    labelled = feedback.labelled_feedback(as_(ws, "viewer"), "chat")
    assert [(r.answer, r.inputs["messages"]) for r in labelled] == [("one", MESSAGES), ("two", MESSAGES)]
    with pytest.raises(NotFoundError, match="deployment 'nope' not found"):
        feedback.feedback(dev, "nope")
    with pytest.raises(Forbidden, match="data:write"):
        feedback.import_feedback(as_(ws, "viewer"), good, "chat")
    with pytest.raises(Forbidden, match="may call other only"):
        feedback.submit_feedback(
            Context(ws.store, Actor("svc", "app", ("other",))), "chat", "req-1", rating=3
        )
    with pytest.raises(NotFoundError, match="request id 'req-1' not found"):
        feedback.submit_feedback(Context(ws.store, Actor("svc", "app", ("chat",))), "chat", "req-1", rating=3)


def test_adapt_without_new_feedback_queues_nothing(chat):
    ws, dev = chat, as_(chat, "developer", "dev")
    with pytest.raises(UsageError, match="no new feedback for deployment 'chat'"):
        adaptation.submit_adapt(dev, "chat", start_kernel=False)
    with pytest.raises(UsageError, match=r"adapt settings: .*'epoch'"):
        adaptation.submit_adapt(dev, "chat", epoch=1)
    with pytest.raises(NotFoundError, match="deployment 'nope' not found"):
        adaptation.submit_adapt(dev, "nope")
    with pytest.raises(Forbidden, match="'adapt' permission"):
        adaptation.submit_adapt(as_(ws, "viewer"), "chat")
    assert not ws.jobs()
    assert adaptation.adapt_history(as_(ws, "viewer"), "chat") == []
    with pytest.raises(NotFoundError):
        adaptation.adapt_history(dev, "nope")
    with pytest.raises(UsageError, match="no earlier model"):
        adaptation.rollback(dev, "chat")
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        adaptation.suggest_labels(dev, "pool", "nope", 5)


def test_monitor_and_alerts(chat):
    ws, viewer = chat, as_(chat, "viewer")
    with pytest.raises(UsageError, match="monitoring covers classifiers"):
        monitoring.monitor(viewer, "chat")
    with pytest.raises(UsageError, match="monitor thresholds"):
        monitoring.monitor(viewer, "chat", thresholds={"drift": 1})
    with pytest.raises(NotFoundError):
        monitoring.alerts(viewer, "nope")
    assert monitoring.alerts(viewer) == [] and monitoring.alerts(viewer, "chat") == []
    with pytest.raises(Forbidden, match="metrics:read"):
        monitoring.alerts(Context(ws.store, Actor("svc", "app", ("chat",))))
