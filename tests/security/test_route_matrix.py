"""Every route of `llmos serve` x every kind of caller: exactly the allowed combinations
get through the policy. Routes are enumerated from the app, so a route added later is in
the matrix without touching this test; the roles' rights below are the documented
contract, written out here rather than read from the code under test."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from llmos.api.access import routes
from llmos.api.app import create_app
from llmos.security.access import PUBLIC
from llmos.security.identities import add_user, create_token, remove_user, revoke_token
from llmos.security.policy import TokenPolicy, open_policy
from llmos.serve.runtime import ServeConfig, ServeRuntime

THIS, OTHER = "chat", "other"
# the contract of the README: what each role may do
RIGHTS = {
    "admin": {"deployments:read", "deployments:write", "predict", "metrics:read"},
    "developer": {"deployments:read", "deployments:write", "predict", "metrics:read"},
    "viewer": {"deployments:read", "metrics:read"},
    "app-this": {"predict"},
    "app-other": {"predict"},
}
DECLARED = {  # the permission each built-in route must declare
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): "metrics:read",
    ("GET", "/v1/models"): "deployments:read",
    ("POST", "/v1/embeddings"): "predict",
    ("POST", "/v1/chat/completions"): "predict",
    ("POST", "/v1/completions"): "predict",
    ("GET", "/v1/deployments"): "deployments:read",
    ("GET", "/v1/deployments/{name}"): "deployments:read",
    ("POST", "/v1/deployments"): "deployments:write",
    ("DELETE", "/v1/deployments/{name}"): "deployments:write",
    ("POST", "/v1/deployments/{name}/predict"): "predict",
}
# one body that every route accepts or rejects with a non-auth error (422/404), naming THIS
BODY = {
    "model": THIS,
    "name": "scratch",
    "inputs": ["hi"],
    "input": "hi",
    "prompt": "hello",
    "messages": [{"role": "user", "content": "hello"}],
    "max_tokens": 1,
}
CALLERS = ["none", "malformed", "unknown", "expired", "revoked", "removed-user", *RIGHTS]


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
    app = create_app(ServeRuntime(store, ServeConfig(max_wait_ms=1)), TokenPolicy(store))
    with TestClient(app) as client:
        yield app, client, headers


def expected(caller: str, permission: str) -> bool:
    if permission == PUBLIC:
        return True
    return permission in RIGHTS.get(caller, set()) and caller != "app-other"


def test_every_route_times_every_caller(served):
    app, client, headers = served
    found = [(m, p, r) for p, methods, r in routes(app) for m in sorted(methods - {"HEAD"})]
    assert {(m, p) for m, p, _ in found} >= set(DECLARED), "a built-in route went missing"
    matrix: dict[tuple[str, str], dict[str, int]] = {}
    wrong = []
    for method, path, route in found:
        permission = (getattr(route, "openapi_extra", None) or {}).get("x-permission", PUBLIC)
        assert DECLARED.get((method, path), permission) == permission, (
            f"{method} {path} declares {permission}"
        )
        url = path.replace("{name}", "scratch" if method == "DELETE" else THIS)  # keep THIS deployed
        row = matrix.setdefault((method, path), {})
        for caller in CALLERS:
            kwargs = {"json": BODY} if method in ("POST", "PUT", "PATCH") else {}
            r = client.request(method, url, headers=headers[caller], **kwargs)
            row[caller] = r.status_code
            passed = r.status_code not in (401, 403)
            if passed != expected(caller, permission):
                wrong.append(f"{method} {path} as {caller}: {r.status_code} {r.text[:120]}")
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
    assert token not in str([e.as_dict() for e in events])  # only the prefix is kept


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
