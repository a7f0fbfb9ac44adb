"""The console's files as the API app serves them (no browser needed): a strict
Content-Security-Policy and no cookie on every page, nothing outside the package's
static folder, no reference to another origin, and the session probe telling a token's
user and role (nulls for a token the server does not accept)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from llmos.console import STATIC
from tests.api.conftest import make_api


def test_files_come_with_a_strict_policy_and_nothing_else_is_served(ws):
    app, headers = make_api(ws)
    with TestClient(app) as client:
        assert client.get("/console", follow_redirects=False).headers["location"] == "/console/"
        page = client.get("/console/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "set-cookie" not in page.headers
        script = client.get("/console/app.js")
        assert script.headers["content-type"].startswith("text/javascript")
        for path in ("/console/%2e%2e/__init__.py", "/console/nope.js", "/console/static"):
            r = client.get(path)
            assert r.status_code == 404, path
        assert client.get("/console/%2e%2e/__init__.py").json()["error"]["message"] == (
            "console file '../__init__.py' not found"
        )
        assert client.get("/console/session", headers=headers["viewer"]).json() == {
            "user": "viv",
            "role": "viewer",
        }
        assert client.get("/console/session", headers=headers["admin"]).json() == {
            "user": "root",
            "role": "admin",
        }
        unknown = {"Authorization": "Bearer llmos_notarealtoken0000000000"}
        assert client.get("/console/session", headers=unknown).json() == {"user": None, "role": None}
        assert client.get("/console/session").json() == {"user": None, "role": None}


def test_the_assets_load_nothing_from_another_origin():
    for path in STATIC.iterdir():
        text = path.read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), path
        assert "innerHTML" not in text and "eval(" not in text, path  # server data goes in as text
