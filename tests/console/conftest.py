"""Browser fixtures: a real server (`ServerThread`, token policy) over a workspace with
an admin, a developer and a viewer, and Debian's headless chromium driven by Playwright
(launched by its path: `playwright install` cannot download browsers here). Without
chromium or Playwright the browser tests skip, saying which is missing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path(os.environ.get("LLMOS_CHROMIUM", "/usr/bin/chromium"))
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
UPLOAD_LIMIT = 200_000  # bytes: over the Banking77 demo CSV (112 kB), small enough to go over
DEMO_CSV = Path(__file__).resolve().parents[2] / "src" / "llmos" / "demo" / "banking_demo_train.csv"


@dataclass
class Console:
    url: str
    tokens: dict[str, str]
    http: dict[str, httpx.Client]
    tmp: Path

    def api(self, role: str = "admin") -> httpx.Client:
        return self.http[role]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from llmos import Workspace
    from llmos.api.server import ServerThread
    from llmos.security.identities import add_user, create_token, init_admin
    from llmos.security.policy import build_policy
    from llmos.serve.runtime import ServeConfig

    tmp = tmp_path_factory.mktemp("console")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LLMOS_KERNEL_IDLE_EXIT", "3")  # the server's on-demand kernel leaves soon after
        ws = Workspace(tmp / "ws")
        ws.init()
        tokens = {"admin": init_admin(ws.store, "root")[0]}
        for name, role in (("dev", "developer"), ("viv", "viewer")):
            add_user(ws.store, name, role)
            tokens[role] = create_token(ws.store, name)[0]
        config = ServeConfig(max_wait_ms=1, max_upload_bytes=UPLOAD_LIMIT)
        server = ServerThread(ws.store, config, policy=build_policy(ws.store))
        with server as url:
            http = {
                role: httpx.Client(base_url=url, headers={"Authorization": f"Bearer {t}"}, timeout=60)
                for role, t in tokens.items()
            }
            yield Console(url, tokens, http, tmp)
            for client in http.values():
                client.close()


@pytest.fixture(scope="module")
def browser() -> Any:
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM}: install Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (pip install .[dev])"
    )
    with sync_api.sync_playwright() as playwright:
        found = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield found
        found.close()


@pytest.fixture
def page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(20_000)
    found = context.new_page()
    errors: list[str] = []
    found.on("pageerror", lambda e: errors.append(str(e)))
    yield found
    context.close()
    assert not errors, f"the console raised in the browser: {errors}"


def shoot(page: Any, name: str) -> None:
    """A screenshot of the page as it is, into docs/console/NAME.png (the README links them),
    when LLMOS_CONSOLE_SHOTS=1: a plain test run leaves the checkout as it was."""
    if os.environ.get("LLMOS_CONSOLE_SHOTS") != "1":
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
