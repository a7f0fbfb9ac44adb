"""`llmos.Client` speaks to a secured server with its token (argument or `LLMOS_TOKEN`)."""

from __future__ import annotations

import pytest

from llmos import Client
from llmos.api.server import ServerThread
from llmos.sdk.client import ServerError
from llmos.security.identities import add_user, create_token, init_admin
from llmos.security.policy import TokenPolicy


def test_client_sends_its_bearer_token(ws, monkeypatch):
    monkeypatch.delenv("LLMOS_TOKEN", raising=False)
    admin, _ = init_admin(ws.store)
    add_user(ws.store, "viv", "viewer")
    viewer, _ = create_token(ws.store, "viv")
    with ServerThread(ws.store, policy=TokenPolicy(ws.store)) as url:
        with pytest.raises(ServerError, match="authentication failed, no bearer token") as missing:
            Client(url).deployments()
        assert missing.value.status == 401
        assert Client(url, token=admin).deployments() == []
        with pytest.raises(ServerError, match="a viewer token may not do this") as denied:
            Client(url, token=viewer).undeploy("x")
        assert denied.value.status == 403
        monkeypatch.setenv("LLMOS_TOKEN", viewer)
        assert Client(url).deployments() == []
        assert "version" in Client(url).health()
