"""`llmos --url URL --token T` for users, audit, keys and feedback: the same output and
exit codes as the same verbs run where the workspace is."""

from __future__ import annotations

import json

import pytest

from llmos.api.server import ServerThread
from llmos.security.identities import add_user, create_token, init_admin
from llmos.security.policy import build_policy
from llmos.serve.runtime import ServeConfig

MESSAGES = json.dumps([{"role": "user", "content": "hello"}])


@pytest.fixture
def remote(ws, run, tiny_lm_dir, monkeypatch):
    ws.deploy(str(tiny_lm_dir), "chat")
    admin = init_admin(ws.store, "root")[0]
    add_user(ws.store, "viv", "viewer")
    viewer = create_token(ws.store, "viv")[0]
    monkeypatch.delenv("LLMOS_URL", raising=False)
    monkeypatch.delenv("LLMOS_TOKEN", raising=False)
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1), policy=build_policy(ws.store)) as url:

        def as_(token: str, *args: str) -> tuple[int, str, str]:
            return run("--url", url, "--token", token, *args)

        yield ws, run, lambda *a: as_(admin, *a), lambda *a: as_(viewer, *a)


def test_auth_user_list_audit_and_feedback_remotely_match_local(remote, tmp_path):
    ws, local, admin, viewer = remote
    code, out, err = admin("auth", "user", "add", "dev", "--role", "developer")
    assert code == 0 and out.strip() == "added user dev (role developer)", err
    for args in (
        ["auth", "user", "list"],
        ["auth", "user", "list", "--json"],
        ["auth", "token", "list", "--json"],
    ):
        assert admin(*args) == local(*args)
    code, out, err = viewer("auth", "user", "list")
    assert code == 10 and err.startswith("error: a viewer token may not do this") and not out
    code, _, err = admin("auth", "user", "remove", "ghost")
    assert code == 3 and "user 'ghost' not found" in err and err.count("\n") == 1
    code, _, err = admin("auth", "init")
    assert code == 2 and "runs on the workspace's machine" in err
    code, out, _ = admin("auth", "token", "create", "--user", "dev", "--json")
    token = json.loads(out)
    assert code == 0 and token["token"].startswith("llmos_") and token["user"] == "dev"
    # audit: the newest N, the same rows; the server's own changes name their remote actor
    assert admin("audit", "list", "--limit", "3", "--json") == local(
        "audit", "list", "--limit", "3", "--json"
    )
    newest = json.loads(admin("audit", "list", "--limit", "2", "--json")[1])
    every = json.loads(local("audit", "list", "--json")[1])
    assert newest == every[-2:] and [e["actor"] for e in newest] == ["viv", "root"]
    assert admin("audit", "list") == local("audit", "list")
    assert admin("audit", "verify") == local("audit", "verify")
    code, out, _ = admin("audit", "verify", "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    assert viewer("audit", "list")[0] == 10
    # keys: status over HTTP, enable only locally
    assert admin("keys", "status", "--json") == local("keys", "status", "--json")
    code, _, err = admin("keys", "enable")
    assert code == 2 and "runs on the workspace's machine" in err
    # feedback: import through an upload, list remotely and locally alike
    good = tmp_path / "fb.jsonl"
    good.write_text("\n".join(json.dumps({"messages": MESSAGES, "answer": f"a{i}"}) for i in range(2)) + "\n")
    code, out, err = admin("feedback", "import", str(good), "--deployment", "chat")
    assert code == 0 and out.startswith("imported 2 feedback rows for chat"), err
    assert viewer("feedback", "list", "chat", "--json") == local("feedback", "list", "chat", "--json")
    assert viewer("feedback", "list", "chat") == local("feedback", "list", "chat")
    code, _, err = viewer("feedback", "list", "nope")
    assert code == 3 and "deployment 'nope' not found" in err
    # tampering is reported with the same exit code
    with ws.store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_events SET target = 'x' WHERE id = 2")
    remote_verdict, local_verdict = admin("audit", "verify"), local("audit", "verify")
    assert remote_verdict == local_verdict and remote_verdict[0] == 11
    assert "audit entry 2 was edited" in remote_verdict[2]
