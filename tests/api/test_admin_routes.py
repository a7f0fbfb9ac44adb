"""Users, tokens, audit, keys, feedback, monitoring and adaptation over HTTP through
`llmos.Client`: the same results as `Workspace`, the server's error class and status,
and nothing stored on bad input."""

from __future__ import annotations

import json

import httpx
import pytest

from llmos.api.server import ServerThread
from llmos.core.errors import DataError, NotFoundError, UsageError
from llmos.sdk.client import Client
from llmos.security.identities import add_user, create_token, init_admin
from llmos.security.policy import build_policy
from llmos.serve.errors import Forbidden
from llmos.serve.runtime import ServeConfig
from tests.conftest import snapshot

MESSAGES = json.dumps([{"role": "user", "content": "hello"}])


@pytest.fixture
def server(ws, tiny_lm_dir):
    ws.deploy(str(tiny_lm_dir), "chat")
    admin = init_admin(ws.store, "root")[0]
    add_user(ws.store, "viv", "viewer")
    viewer = create_token(ws.store, "viv")[0]
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1), policy=build_policy(ws.store)) as url:
        yield ws, url, Client(url, token=admin), Client(url, token=viewer)


def test_users_tokens_and_audit_over_http(server):
    ws, url, admin, viewer = server
    assert admin.users() == ws.users()
    dev = admin.add_user("dev", "developer")
    assert dev.name == "dev" and dev in [u.model_copy(update={"active_tokens": 0}) for u in ws.users()]
    new = admin.create_token("dev", expires="1h")
    assert Client(url, token=new.token).deployments()[0].name == "chat"  # the new token works
    assert admin.tokens("dev") == ws.tokens("dev") and admin.tokens("dev")[0].state == "active"
    with pytest.raises(Forbidden, match="users:admin") as refused:
        viewer.create_token("root", "admin")
    assert refused.value.status == 403
    with pytest.raises(NotFoundError, match="user 'ghost' not found") as missing:
        admin.remove_user("ghost")
    assert missing.value.status == 404
    with pytest.raises(UsageError, match="unknown role 'boss'"):
        admin.add_user("x", "boss")
    r = httpx.delete(f"{url}/v1/tokens/{new.token}", headers={"Authorization": f"Bearer {admin.token}"})
    assert r.status_code == 422 and "not the token" in r.json()["error"]["message"]
    assert admin.revoke_token(new.token).state == "revoked"  # the client sends the prefix only
    assert admin.remove_user("dev").removed
    events = admin.audit_events()
    assert events == ws.audit_events()
    assert [e.action for e in events if e.actor == "root"] == [
        "user.add", "token.create", "token.revoke", "user.remove",
    ]  # fmt: skip
    assert admin.audit_events(limit=2) == events[-2:]
    assert admin.audit_events(since=events[-1].at) == [e for e in events if e.at >= events[-1].at]
    verdict = admin.verify_audit()
    assert verdict.ok and verdict.events == len(ws.audit_events())
    with pytest.raises(Forbidden):
        viewer.audit_events()
    assert admin.encryption_status() == ws.encryption_status()
    with pytest.raises(UsageError, match="not encrypted"):
        admin.rotate_key()
    with pytest.raises(UsageError, match="workspace's machine"):
        admin.rotate_key("key.b64")


def test_feedback_import_list_and_adapt_over_http(server, tmp_path):
    ws, _url, admin, viewer = server
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": MESSAGES, "answer": "hi"}) + "\n" + json.dumps({"x": 1}) + "\n")
    before = snapshot(ws.home)
    with pytest.raises(DataError, match=r"^bad.jsonl row 2: no request id") as failed:
        admin.import_feedback(bad, "chat")
    assert failed.value.status == 422 and "/tmp/llmos-feedback" not in str(failed.value)
    assert snapshot(ws.home)["tables"]["feedback"] == before["tables"]["feedback"] == []
    with pytest.raises(Forbidden):
        viewer.import_feedback(bad, "chat")
    with pytest.raises(NotFoundError, match="deployment 'nope'"):
        admin.import_feedback(bad, "nope")
    good = tmp_path / "good.csv"
    good.write_text("messages,answer\n" + "\n".join(json.dumps(MESSAGES) + f",answer {i}" for i in range(3)))
    done = admin.import_feedback(good, "chat")
    assert (done.imported, done.new_rows) == (3, 3)
    assert viewer.feedback("chat") == ws.feedback("chat") and len(ws.feedback("chat", 2)) == 2
    assert viewer.labelled_feedback("chat") == ws.labelled_feedback("chat")
    with pytest.raises(NotFoundError):
        viewer.feedback("nope")
    # adapt: a generation deployment's answers are not what adapt trains on here, but the
    # checks before anything is queued are the server's
    with pytest.raises(UsageError, match=r"epoch: Extra inputs"):
        admin.submit_adapt("chat", epoch=1)
    with pytest.raises(Forbidden):
        viewer.submit_adapt("chat")
    assert viewer.adapt_history("chat") == ws.adapt_history("chat") == []
    with pytest.raises(UsageError, match="no earlier model"):
        admin.rollback("chat")
    with pytest.raises(UsageError, match="monitoring covers classifiers"):
        viewer.monitor("chat", png=tmp_path / "m.png")
    assert viewer.alerts() == []
    with pytest.raises(UsageError, match="--webhook"):
        viewer.monitor("chat", webhook="http://127.0.0.1:9/")
    assert not ws.jobs()


def test_adapt_with_no_feedback_queues_nothing_over_http(server):
    ws, _url, admin, _viewer = server
    with pytest.raises(UsageError, match="no new feedback for deployment 'chat'") as failed:
        admin.submit_adapt("chat")
    assert failed.value.status == 422 and not ws.jobs()
    with pytest.raises(UsageError, match="no new feedback"):
        admin.adapt("chat", epochs=1)
    assert not ws.jobs()
