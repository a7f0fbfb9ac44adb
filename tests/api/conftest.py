"""A real server (uvicorn in a thread) over a workspace with the intents dataset, the
token policy, and a token per role."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from llmos.api.server import ServerThread
from llmos.security.identities import add_user, create_token, init_admin
from llmos.security.policy import build_policy
from llmos.serve.runtime import ServeConfig


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
