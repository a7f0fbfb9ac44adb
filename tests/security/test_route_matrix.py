"""Every route of `llmos serve` x every kind of caller: exactly the allowed combinations
get through the policy (allowed: neither 401 nor 403).

`ROUTES` is the table of every route: its method, path, the permission it must declare
and an example request (one that, when allowed, fails for a reason other than access or
changes nothing the next caller depends on). A route of `create_app` missing from the
table fails the test, so a route added later has to be entered here. What each role may
do (`RIGHTS`) is the documented contract, written out here and held against the role
table of the code (`llmos.security.identities.role_allows`). `pytest -s` prints the matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from llmos.api.access import routes
from llmos.api.app import create_app
from llmos.security.access import PUBLIC
from llmos.security.identities import (
    ROLES,
    add_user,
    create_token,
    remove_user,
    revoke_token,
    role_allows,
)
from llmos.security.policy import TokenPolicy, open_policy
from llmos.security.watch import FailureLimiter
from llmos.serve.runtime import ServeConfig, ServeRuntime

THIS, OTHER = "chat", "other"
CHAT = {"model": THIS, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 1}
READS = {"data:read", "models:read", "jobs:read", "deployments:read", "metrics:read", "feedback:read"}
READS |= {"projects:read"}  # F17
# the contract of the README: what each role may do ("*": everything)
RIGHTS: dict[str, set[str]] = {
    "admin": {"*"},
    "developer": READS
    | {"data:write", "train", "jobs:write", "models:write", "deployments:write", "predict", "adapt"},
    "viewer": READS,
    "app": {"predict"},
}
BAD = ["none", "malformed", "unknown", "expired", "revoked", "removed-user"]
CALLERS = [*BAD, "admin", "developer", "viewer", "app-this", "app-other"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    permission: str
    example: dict[str, Any] = field(default_factory=dict)  # TestClient.request keyword arguments
    url: str | None = None  # the path with its parameters filled in (default: {name} -> THIS)


FEEDBACK_FILE = {
    "files": {"file": ("fb.csv", b"request_id,label\nnope,card\n")},
    "data": {"deployment": THIS},
}
ROUTES = [
    Route("GET", "/healthz", PUBLIC),
    Route("GET", "/metrics", "metrics:read"),
    # the web console (files, and who the token speaks for; nulls for no usable token)
    Route("GET", "/console", PUBLIC, {"follow_redirects": False}),
    Route("GET", "/console/session", PUBLIC),
    Route("GET", "/console/{path:path}", PUBLIC, url="/console/app.js"),
    # OpenAI-compatible
    Route("GET", "/v1/models", "deployments:read"),
    Route("GET", "/v1/models/{model}", "deployments:read", url=f"/v1/models/{THIS}"),
    Route("POST", "/v1/embeddings", "predict", {"json": {"model": THIS, "input": "hi"}}),
    Route("POST", "/v1/chat/completions", "predict", {"json": CHAT}),
    Route("POST", "/v1/completions", "predict",
          {"json": {"model": THIS, "prompt": "hello", "max_tokens": 1}}),
    # deployments
    Route("GET", "/v1/deployments", "deployments:read"),
    Route("GET", "/v1/deployments/{name}", "deployments:read"),
    Route("POST", "/v1/deployments", "deployments:write", {"json": {"model": "nope", "name": "scratch"}}),
    Route("DELETE", "/v1/deployments/{name}", "deployments:write", url="/v1/deployments/scratch"),
    Route("POST", "/v1/deployments/{name}/predict", "predict", {"json": {"inputs": ["hi"]}}),
    Route("POST", "/v1/deployments/{name}/recommend", "predict", {"json": {"user": "u1", "k": 3}}),
    # feedback
    Route("POST", "/v1/deployments/{name}/feedback", "predict",
          {"json": {"request_id": "nope", "label": "x"}}),
    Route("GET", "/v1/deployments/{name}/feedback", "feedback:read", {"params": {"limit": 5}}),
    Route("GET", "/v1/deployments/{name}/feedback/labelled", "feedback:read"),
    Route("POST", "/v1/feedback/import", "data:write", FEEDBACK_FILE),
    # monitoring
    Route("GET", "/v1/deployments/{name}/monitor", "metrics:read"),
    Route("GET", "/v1/deployments/{name}/monitor/chart", "metrics:read"),
    Route("GET", "/v1/deployments/{name}/traffic", "metrics:read", {"params": {"seconds": 60}}),
    Route("GET", "/v1/alerts", "metrics:read"),
    # adaptation and active learning
    Route("POST", "/v1/deployments/{name}/adapt", "adapt", {"json": {"epochs": 1}}),
    Route("POST", "/v1/deployments/{name}/adapt/plan", "feedback:read", {"json": {}}),
    Route("GET", "/v1/deployments/{name}/adapt/history", "feedback:read"),
    Route("POST", "/v1/deployments/{name}/rollback", "adapt", {"json": {"reason": "test"}}),
    Route("POST", "/v1/labels/suggest", "adapt", {"json": {"dataset": "nope", "model": "nope"}}),
    # users, tokens, audit, keys
    Route("GET", "/v1/users", "users:admin"),
    Route("POST", "/v1/users", "users:admin", {"json": {"name": "scratch", "role": "boss"}}),
    Route("DELETE", "/v1/users/{name}", "users:admin", url="/v1/users/ghost"),
    Route("GET", "/v1/tokens", "users:admin"),
    Route("POST", "/v1/tokens", "users:admin", {"json": {"user": "ghost"}}),
    Route("DELETE", "/v1/tokens/{token}", "users:admin", url="/v1/tokens/999"),
    Route("POST", "/v1/tokens/{token}/suspend", "users:admin", url="/v1/tokens/999/suspend"),
    Route("POST", "/v1/users/{name}/suspend", "users:admin", url="/v1/users/ghost/suspend"),
    Route("GET", "/v1/audit", "audit:read", {"params": {"limit": 3}}),
    Route("GET", "/v1/audit/verify", "audit:read"),
    Route("GET", "/v1/keys", "keys:admin"),
    Route("POST", "/v1/keys/rotate", "keys:admin"),
    # datasets, specs and the registry (an empty upload and unknown refs: nothing is stored)
    Route("POST", "/v1/datasets", "data:write",
          {"files": {"file": ("empty.csv", b"")}, "data": {"name": "scratch"}}),
    Route("GET", "/v1/datasets", "data:read"),
    Route("GET", "/v1/datasets/{ref}", "data:read", url="/v1/datasets/nope"),
    Route("GET", "/v1/datasets/{ref}/rows", "data:read", url="/v1/datasets/nope/rows"),
    Route("POST", "/v1/specs/check", "data:read", {"json": {"spec": {"name": "x"}}}),
    Route("GET", "/v1/specs/schema", "data:read"),
    Route("GET", "/v1/registry/models", "models:read"),
    Route("GET", "/v1/registry/models/{ref}", "models:read", url="/v1/registry/models/nope"),
    Route("GET", "/v1/registry/models/{ref}/lineage", "models:read", url="/v1/registry/models/nope/lineage"),
    Route("GET", "/v1/registry/models/{ref}/files", "models:read", url="/v1/registry/models/nope/files"),
    Route("GET", "/v1/registry/models/{ref}/metrics", "models:read", url="/v1/registry/models/nope/metrics"),
    Route("POST", "/v1/registry/models/{ref}/export", "models:write", {"json": {"to": "sqlite:///x.db"}},
          url="/v1/registry/models/nope/export"),
    Route("GET", "/v1/registry/models/{ref}/files/{path:path}", "models:read",
          url="/v1/registry/models/nope/files/report/metrics.json"),
    Route("POST", "/v1/registry/models/{ref}/share", "models:write", {"json": {"project": "default"}},
          url="/v1/registry/models/nope/share"),
    Route("GET", "/v1/registry/zoo", "models:read"),
    # jobs and the training plane (an invalid spec and unknown ids: nothing is queued)
    Route("POST", "/v1/jobs", "train", {"json": {"kind": "train", "spec": {"name": "x"}}}),
    Route("GET", "/v1/jobs", "jobs:read"),
    Route("GET", "/v1/jobs/{id}", "jobs:read", url="/v1/jobs/999"),
    Route("POST", "/v1/jobs/{id}/cancel", "jobs:write", url="/v1/jobs/999/cancel"),
    Route("POST", "/v1/jobs/{id}/retry", "jobs:write", url="/v1/jobs/999/retry"),
    Route("GET", "/v1/jobs/{id}/log", "jobs:read", url="/v1/jobs/999/log"),
    Route("GET", "/v1/jobs/{id}/events", "jobs:read", url="/v1/jobs/999/events"),
    Route("GET", "/v1/kernel", "jobs:read"),
    Route("GET", "/v1/prediction-sets", "jobs:read"),
    # schedules (an unknown job and unknown names: nothing is stored or changed)
    Route("GET", "/v1/schedules", "jobs:read"),
    Route("POST", "/v1/schedules", "train", {"json": {"name": "scratch", "job": ["bogus"], "every": "1h"}}),
    Route("GET", "/v1/schedules/{name}", "jobs:read", url="/v1/schedules/ghost"),
    Route("DELETE", "/v1/schedules/{name}", "train", url="/v1/schedules/ghost"),
    Route("POST", "/v1/schedules/{name}/pause", "train", url="/v1/schedules/ghost/pause"),
    Route("POST", "/v1/schedules/{name}/resume", "train", url="/v1/schedules/ghost/resume"),
    # watches (an unknown classifier and unknown watches: nothing is stored or changed)
    Route("GET", "/v1/watches", "data:read"),
    Route("POST", "/v1/watches", "data:write", {"json": {"name": "scratch", "classifier": "ghost"}}),
    Route("GET", "/v1/watches/{name}", "data:read", url="/v1/watches/ghost"),
    Route("POST", "/v1/watches/{name}/texts", "data:write",
          {"json": {"rows": [{"text": "hi", "timestamp": "2026-01-01T00:00:00Z"}]}},
          url="/v1/watches/ghost/texts"),
    Route("GET", "/v1/watches/{name}/texts", "data:read", url="/v1/watches/ghost/texts"),
    Route("POST", "/v1/watches/{name}/backfill", "data:write", {"json": {"data": "intents"}},
          url="/v1/watches/ghost/backfill"),
    Route("GET", "/v1/watches/{name}/series", "data:read", url="/v1/watches/ghost/series"),
    Route("GET", "/v1/watches/{name}/alerts", "data:read", url="/v1/watches/ghost/alerts"),
    Route("POST", "/v1/watches/{name}/alerts/{alert_id}/ack", "data:write",
          url="/v1/watches/ghost/alerts/1/ack"),
    Route("GET", "/v1/watches/{name}/plot", "data:read", url="/v1/watches/ghost/plot"),
    Route("POST", "/v1/registry/models/{ref}/predict", "predict", {"json": {"inputs": ["hi"]}},
          url="/v1/registry/models/nope/predict"),
    # the support assistant (unknown deployments, assistants and sessions: nothing is stored;
    # an app token calls an assistant by name, and a session's routes through its assistant)
    Route("POST", "/v1/support/assistants", "deployments:write",
          {"json": {"name": "desk", "config": {"intents": "ghost"}}}),
    Route("GET", "/v1/support/assistants", "deployments:read"),
    Route("POST", "/v1/support/sessions", "predict", {"json": {"assistant": THIS}}),
    Route("GET", "/v1/support/sessions/{session}", "predict", url="/v1/support/sessions/ghost"),
    Route("POST", "/v1/support/sessions/{session}/messages", "predict", {"json": {"message": "hi"}},
          url="/v1/support/sessions/ghost/messages"),
    Route("GET", "/v1/support/handoffs", "feedback:read"),
    # knowledge collections (an empty upload and unknown collections: nothing is stored)
    Route("POST", "/v1/knowledge", "data:write",
          {"files": {"file": ("empty.md", b"")}, "data": {"name": "scratch"}}),
    Route("POST", "/v1/knowledge/documents", "data:write",
          {"files": {"file": ("empty.md", b"")}, "data": {"name": "ghost"}}),
    Route("GET", "/v1/knowledge", "data:read"),
    Route("GET", "/v1/knowledge/{ref}", "data:read", url="/v1/knowledge/ghost"),
    Route("POST", "/v1/knowledge/{ref}/search", "data:read", {"json": {"query": "hi"}},
          url="/v1/knowledge/ghost/search"),
    Route("DELETE", "/v1/knowledge/{name}/documents", "data:write", {"params": {"source": "a.md"}},
          url="/v1/knowledge/ghost/documents"),
    # projects (F17: a bad name and unknown projects: nothing is stored or changed)
    Route("GET", "/v1/projects", "projects:read"),
    Route("POST", "/v1/projects", "projects:admin", {"json": {"name": "Bad Name!"}}),
    Route("GET", "/v1/projects/{name}", "projects:read", url="/v1/projects/default"),
    Route("DELETE", "/v1/projects/{name}", "projects:admin", url="/v1/projects/ghost"),
    Route("PUT", "/v1/projects/{name}/members/{user}", "projects:admin", {"json": {"role": "viewer"}},
          url="/v1/projects/ghost/members/ghost"),
    Route("DELETE", "/v1/projects/{name}/members/{user}", "projects:admin",
          url="/v1/projects/ghost/members/ghost"),
    Route("PATCH", "/v1/projects/{name}/quotas", "projects:admin", {"json": {"requests_per_day": 5}},
          url="/v1/projects/ghost/quotas"),
]  # fmt: skip


@pytest.fixture
def served(ws, tiny_lm_dir):
    ws.deploy(str(tiny_lm_dir), THIS)
    ws.deploy(str(tiny_lm_dir), OTHER)
    store = ws.store
    for name, role in [("root", "admin"), ("dev", "developer"), ("viv", "viewer"), ("svc", "app"),
                       ("gone", "developer")]:  # fmt: skip
        add_user(store, name, role)
    tokens = {
        "admin": create_token(store, "root")[0],
        "developer": create_token(store, "dev")[0],
        "viewer": create_token(store, "viv")[0],
        "app-this": create_token(store, "svc", deployments=[THIS])[0],
        "app-other": create_token(store, "svc", deployments=[OTHER])[0],
        "expired": create_token(store, "dev", expires=timedelta(seconds=-1))[0],
        "revoked": create_token(store, "dev")[0],
        "removed-user": create_token(store, "gone")[0],
        "unknown": "llmos_" + "x" * 43,
    }
    revoke_token(store, tokens["revoked"])  # by the token itself
    remove_user(store, "gone")
    headers = {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}
    headers["none"] = {}
    headers["malformed"] = {"Authorization": f"Token {tokens['admin']}"}
    # every caller comes from one address: the failed-authentication limit (F17) is lifted here
    policy = TokenPolicy(store, failures=FailureLimiter(limit=10**6))
    app = create_app(ServeRuntime(store, ServeConfig(max_wait_ms=1)), policy)
    with TestClient(app) as client:
        yield app, client, headers


def role_of(caller: str) -> str | None:
    return "app" if caller.startswith("app-") else caller if caller in RIGHTS else None


def expected(caller: str, route: Route, declared: dict[str, Any]) -> bool:
    """Allowed from the route's permission and the role table: a bad token never passes,
    an app token only on a route that names its deployment (THIS, in every example)."""
    if route.permission == PUBLIC:
        return True
    role = role_of(caller)
    if role is None:
        return False
    rights = RIGHTS[role]
    if "*" not in rights and route.permission not in rights:
        return False
    if str(declared.get("x-deployment", "")).startswith("session:"):
        return role != "app"  # the examples' session is unknown: it belongs to no assistant
    return role != "app" or (bool(declared.get("x-deployment")) and caller == "app-this")


def test_the_contract_is_the_code_s_role_table():
    assert set(RIGHTS) == set(ROLES)
    for route in ROUTES:
        if route.permission == PUBLIC:
            continue
        for role, rights in RIGHTS.items():
            documented = "*" in rights or route.permission in rights
            assert role_allows(role, route.permission) == documented, (role, route.permission)


def test_every_route_is_in_the_table(ws):
    app = create_app(ServeRuntime(ws.store), TokenPolicy(ws.store))
    found = {(m, p) for p, methods, _ in routes(app) for m in methods - {"HEAD"}}
    found -= {("GET", p) for p in (app.openapi_url, app.docs_url, app.redoc_url,
                                   app.swagger_ui_oauth2_redirect_url)}  # fmt: skip
    listed = [(r.method, r.path) for r in ROUTES]
    assert len(listed) == len(set(listed)), "a route is listed twice"
    missing = sorted(found - set(listed), key=lambda mp: (mp[1], mp[0]))
    assert not missing, f"routes missing from ROUTES (add each with its permission and an example): {missing}"
    assert not set(listed) - found, f"ROUTES lists routes the app does not have: {set(listed) - found}"


def test_every_route_times_every_caller(served):
    app, client, headers = served
    declared_by = {
        (m, p): (getattr(r, "openapi_extra", None) or {}) for p, methods, r in routes(app) for m in methods
    }
    matrix: dict[tuple[str, str], dict[str, int]] = {}
    wrong = []
    for route in ROUTES:
        declared = declared_by[(route.method, route.path)]
        assert declared.get("x-permission", PUBLIC) == route.permission, (
            f"{route.method} {route.path} declares {declared.get('x-permission')}, not {route.permission}"
        )
        url = route.url or route.path.replace("{name}", THIS)
        row = matrix.setdefault((route.method, route.path), {})
        for caller in CALLERS:
            r = client.request(route.method, url, headers=headers[caller], **route.example)
            row[caller] = r.status_code
            assert r.status_code < 500, f"{route.method} {url} as {caller}: {r.status_code} {r.text[:200]}"
            passed = r.status_code not in (401, 403)
            if passed != expected(caller, route, declared):
                wrong.append(f"{route.method} {route.path} as {caller}: {r.status_code} {r.text[:120]}")
            if r.status_code in (401, 403):
                error = r.json()["error"]
                expected_code = "invalid_api_key" if r.status_code == 401 else "permission_denied"
                assert error["code"] == expected_code and error["message"] and error["type"]
            if r.status_code == 401:
                assert r.headers["www-authenticate"].startswith("Bearer")
    table = _table(matrix)
    print("\n" + table)
    assert not wrong, "\n".join(wrong) + "\n" + table
    # the refusals are told apart: 401 for who-are-you, 403 for not-allowed
    assert matrix[("GET", "/v1/deployments")]["expired"] == 401
    assert matrix[("GET", "/v1/deployments")]["app-this"] == 403
    assert matrix[("POST", "/v1/chat/completions")]["app-this"] == 200
    assert matrix[("POST", "/v1/chat/completions")]["app-other"] == 403
    assert matrix[("GET", "/v1/users")]["developer"] == 403 and matrix[("GET", "/v1/users")]["admin"] == 200
    # /docs can send the token: every non-public operation names the bearer scheme
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert schema["paths"]["/v1/deployments"]["get"]["security"] == [{"bearer": []}]
    assert "security" not in schema["paths"]["/healthz"]["get"]


def _table(matrix: dict[tuple[str, str], dict[str, int]]) -> str:
    width = max(len(f"{m} {p}") for m, p in matrix) + 1
    lines = [" " * width + " ".join(f"{c[:9]:>9}" for c in CALLERS)]
    for (method, path), row in sorted(matrix.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        lines.append(f"{method + ' ' + path:<{width}}" + " ".join(f"{row[c]:>9}" for c in CALLERS))
    return "\n".join(lines)


def test_health_is_open_but_says_nothing_without_a_token(served):
    _, client, headers = served
    anonymous = client.get("/healthz").json()
    assert anonymous == {"status": "ok"}
    assert client.get("/healthz", headers=headers["revoked"]).json() == {"status": "ok"}
    known = client.get("/healthz", headers=headers["viewer"]).json()
    assert known["status"] == "ok" and "version" in known and "warning" not in known


def test_http_changes_are_audited_as_the_token_user(served):
    from llmos.store.audit import list_events

    app, client, headers = served
    store = app.state.runtime.store
    assert client.delete(f"/v1/deployments/{OTHER}", headers=headers["developer"]).status_code == 200
    assert client.get("/v1/deployments", headers=headers["revoked"]).status_code == 401
    bad = client.post("/v1/deployments", json={"model": "nope", "name": "x"}, headers=headers["developer"])
    assert bad.status_code in (404, 422)
    events = list_events(store)
    attempt = next(e for e in events if e.action == "http.change")
    assert (attempt.actor, attempt.target, attempt.outcome) == ("dev", "POST /v1/deployments", "failed")
    assert attempt.detail["status"] == bad.status_code
    removal = next(e for e in events if e.action == "deployment.delete")
    assert (removal.actor, removal.target, removal.outcome) == ("dev", OTHER, "ok")
    failed = [e for e in events if e.action == "auth.fail"][-1]
    token = headers["revoked"]["Authorization"].split()[1]
    assert failed.outcome == "denied" and failed.detail["token_prefix"] == token[:12]
    # the actor is the remote caller as far as it is known, never the server's local user
    assert failed.actor == f"token:{token[:12]}"
    assert token not in str([e.as_dict() for e in events])  # only the prefix is kept
    assert client.get("/v1/deployments").status_code == 401
    assert client.get("/v1/users", headers=headers["unknown"]).status_code == 401
    anonymous, unknown = [e for e in list_events(store) if e.action == "auth.fail"][-2:]
    assert (anonymous.actor, anonymous.detail["reason"]) == ("anonymous", "no bearer token")
    assert unknown.actor == "token:llmos_xxxxxx" and unknown.detail["reason"] == "unknown token"
    assert not [
        e for e in list_events(store) if e.action.startswith("auth.") and e.actor.startswith("local:")
    ]


def test_a_route_without_a_permission_cannot_be_served(ws, monkeypatch):
    from llmos.api.routers import deployments as module
    from llmos.core.errors import UsageError

    original = module.router

    def with_feedback(allow):
        router = original(allow)

        @router.post("/{name}/forgotten")  # a later route that forgot to declare
        async def forgotten(name: str) -> dict[str, str]:
            return {"name": name}

        return router

    monkeypatch.setattr(module, "router", with_feedback)
    with pytest.raises(UsageError, match=r"POST /v1/deployments/\{name\}/forgotten declares no permission"):
        create_app(ServeRuntime(ws.store), TokenPolicy(ws.store))


def test_insecure_mode_admits_everyone_and_says_so(ws, caplog):
    with caplog.at_level("WARNING", "llmos.serve"):
        app = create_app(ServeRuntime(ws.store), open_policy())
    assert "WARNING: authentication is off" in caplog.text
    with TestClient(app) as client:
        health = client.get("/healthz").json()
        assert "authentication is off" in health["warning"] and "version" in health
        assert client.get("/v1/deployments").status_code == 200
        assert client.delete("/v1/deployments/x").status_code == 404
        assert "securitySchemes" not in client.get("/openapi.json").json().get("components", {})
    from llmos.store.audit import list_events

    assert list_events(ws.store)[-1].actor == "anonymous"  # the failed removal, by nobody known
