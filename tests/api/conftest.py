"""HTTP test fixtures: `served`, a real server (uvicorn in a thread) over a workspace with
the intents dataset, the token policy and a token per role; `api`, an in-process app
(TestClient) over a workspace behind the token policy, with a token of each role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from llmos.api.server import ServerThread
from llmos.security.identities import add_user, create_token, init_admin
from llmos.security.policy import build_policy
from llmos.serve.runtime import ServeConfig
from tests.ops.conftest import filled, register_fake  # noqa: F401


@dataclass
class Served:
    url: str
    tokens: dict[str, str]
    server: ServerThread

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture
def served(ws, intents_csv, monkeypatch):
    monkeypatch.setenv("LLMOS_KERNEL_IDLE_EXIT", "2")  # the server's on-demand kernel leaves soon after
    ws.import_dataset(intents_csv, "intents")
    store = ws.store
    tokens = {"admin": init_admin(store, "root")[0]}
    for name, role in (("dev", "developer"), ("viv", "viewer")):
        add_user(store, name, role)
        tokens[role] = create_token(store, name)[0]
    server = ServerThread(store, ServeConfig(max_wait_ms=1), policy=build_policy(store))
    with server as url:
        yield Served(url, tokens, server)


@dataclass
class Api:
    ws: Any
    client: TestClient
    headers: dict[str, dict[str, str]]

    def get(self, path: str, role: str = "admin", **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers[role], **kwargs)

    def post(self, path: str, role: str = "admin", **kwargs: Any) -> Any:
        return self.client.post(path, headers=self.headers[role], **kwargs)


def tokens(store) -> dict[str, dict[str, str]]:
    from llmos.security.identities import add_user, create_token, init_admin

    admin, _ = init_admin(store, "root")
    found = {"admin": admin}
    for name, role in (("dev", "developer"), ("viv", "viewer"), ("svc", "app")):
        add_user(store, name, role)
        found[role] = create_token(store, name, deployments=["chat"] if role == "app" else None)[0]
    headers = {role: {"Authorization": f"Bearer {token}"} for role, token in found.items()}
    headers["none"] = {}
    return headers


def make_api(ws, **config: Any) -> Any:
    from llmos.api.app import create_app
    from llmos.security.policy import build_policy
    from llmos.serve.runtime import ServeConfig, ServeRuntime

    headers = tokens(ws.store)
    app = create_app(ServeRuntime(ws.store, ServeConfig(max_wait_ms=1, **config)), build_policy(ws.store))
    return app, headers


@pytest.fixture
def api(ws, request):
    config = getattr(request, "param", {})
    app, headers = make_api(ws, **config)
    with TestClient(app) as client:
        yield Api(ws, client, headers)
