"""The assistant over HTTP (`/v1/support/...`) and from the command line (`llmos support`),
on the shared support workspace."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from llmos.api.app import create_app
from llmos.cli.main import main
from llmos.security.identities import add_user, create_token
from llmos.security.policy import TokenPolicy, open_policy
from llmos.serve.runtime import ServeConfig, ServeRuntime
from tests.apps.support.conftest import FAQ


def test_http_sessions_messages_and_the_handoff_queue(desk):
    with TestClient(create_app(ServeRuntime(desk.store, ServeConfig(max_wait_ms=1)), open_policy())) as http:
        opened = http.post("/v1/support/sessions", json={"assistant": "desk"})
        assert opened.status_code == 200, opened.text
        session = opened.json()["session"]
        answer = http.post(f"/v1/support/sessions/{session}/messages", json={"message": FAQ[1][0]})
        assert answer.status_code == 200 and answer.json()["answer"] == FAQ[1][1]
        handed = http.post(
            f"/v1/support/sessions/{session}/messages", json={"message": "get me a human agent"}
        )
        assert handed.json()["handoff_reason"] == "human-requested"
        queue = http.get("/v1/support/handoffs", params={"assistant": "desk"}).json()
        assert session in {h["session"] for h in queue}
        shown = http.get(f"/v1/support/sessions/{session}").json()
        assert shown["status"] == "handed-off" and len(shown["transcript"]) == 4
        missing = http.post("/v1/support/sessions/sess-ghost/messages", json={"message": "hi"})
        assert missing.status_code == 404
        assert missing.json()["error"]["message"] == (
            "support session 'sess-ghost' not found; open one with POST /v1/support/sessions"
        )
        empty = http.post("/v1/support/sessions", json={"assistant": "ghost"})
        assert empty.status_code == 404 and "assistant 'ghost' not found" in empty.json()["error"]["message"]
        bad = http.post("/v1/support/assistants", json={"name": "x", "config": {"generator": "intents"}})
        assert bad.status_code == 422
        assert "generator: deployment 'intents' serves a classifier model" in bad.json()["error"]["message"]


def test_an_app_token_for_the_assistant_holds_a_whole_conversation(desk):
    """An app token that may call `desk` (and holds no read permission) opens a session and
    gets answers: the turn's own reads are the assistant's; a token for another
    deployment is refused on the assistant and on its sessions, and nothing is stored."""
    add_user(desk.store, "shop", "app")
    mine = {"Authorization": f"Bearer {create_token(desk.store, 'shop', deployments=['desk'])[0]}"}
    other = {"Authorization": f"Bearer {create_token(desk.store, 'shop', deployments=['intents'])[0]}"}
    runtime = ServeRuntime(desk.store, ServeConfig(max_wait_ms=1))
    with TestClient(create_app(runtime, TokenPolicy(desk.store))) as http:
        opened = http.post("/v1/support/sessions", json={"assistant": "desk"}, headers=mine)
        assert opened.status_code == 200, opened.text
        session = opened.json()["session"]
        answer = http.post(
            f"/v1/support/sessions/{session}/messages", json={"message": FAQ[0][0]}, headers=mine
        )
        assert answer.status_code == 200, answer.text
        assert (answer.json()["action"], answer.json()["answer"]) == ("faq", FAQ[0][1])
        assert http.get(f"/v1/support/sessions/{session}", headers=mine).json()["turns"] == 1
        for method, url, body in [
            ("POST", "/v1/support/sessions", {"assistant": "desk"}),
            ("POST", f"/v1/support/sessions/{session}/messages", {"message": FAQ[1][0]}),
            ("GET", f"/v1/support/sessions/{session}", None),
        ]:
            refused = http.request(method, url, json=body, headers=other)
            assert refused.status_code == 403, (url, refused.text)
            assert refused.json()["error"]["message"] == "this app token may call intents only, not 'desk'"
        assert http.get("/v1/knowledge/faq", headers=mine).status_code == 403  # no reads of its own
    assert desk.support_session(session).turns == 1


def test_cli_ask_opens_a_session_and_handoffs_lists_the_queue(desk, capsys, monkeypatch):
    monkeypatch.setenv("LLMOS_HOME", str(desk.home))
    monkeypatch.setenv("COLUMNS", "200")
    code = main(["support", "ask", FAQ[2][0], "--assistant", "desk", "--json"])
    reply = json.loads(capsys.readouterr().out)
    assert code == 0 and reply["action"] == "faq" and reply["answer"] == FAQ[2][1]
    code = main(["support", "ask", "I want to talk to a person", "--session", reply["session"]])
    printed = capsys.readouterr().out
    assert code == 0 and "handoff: human-requested" in printed
    assert main(["support", "handoffs", "--json"]) == 0
    assert reply["session"] in {h["session"] for h in json.loads(capsys.readouterr().out)}
    code = main(["support", "ask", "hi", "--session", "sess-ghost"])
    err = capsys.readouterr().err
    assert code != 0 and "support session 'sess-ghost' not found" in err
    assert main(["support", "ask", "hi"]) != 0
    assert "give --session SESSION" in capsys.readouterr().err
