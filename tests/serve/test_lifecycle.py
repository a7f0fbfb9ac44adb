"""Re-pointing a deployment under load fails no request; a server stopped with SIGTERM
lets in-flight requests finish; the deploy/undeploy/deployments commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from llmos import Client
from llmos.api.server import ServerThread, free_port
from llmos.cli.main import main
from llmos.security.policy import open_policy
from llmos.serve.runtime import ServeConfig
from tests.serve.conftest import fleet

# about the serving process and the model, not the store: the store queries it makes run on
# both backends in test_http.py and test_feedback.py
pytestmark = pytest.mark.default_backend_only

TEXTS = ["my card has not arrived", "refund the charge please"]


def test_repoint_under_load_fails_no_request(lora_ws):
    ws = lora_ws
    fleet(ws, 2)
    ws.deploy("lora0@1", "live")
    served: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def hammer(client: Client) -> None:
        while not stop.is_set():
            try:
                r = httpx.post(
                    f"{client.url}/v1/deployments/live/predict", json={"inputs": TEXTS}, timeout=30
                )
                if r.status_code != 200:
                    failures.append(r.text)
                else:
                    served.append(r.json()["model"])
            except httpx.HTTPError as exc:
                failures.append(repr(exc))

    with (
        ServerThread(ws.store, ServeConfig(max_wait_ms=2, refresh_s=0.05), policy=open_policy()) as url,
        ThreadPoolExecutor(6) as pool,
    ):
        futures = [pool.submit(hammer, Client(url)) for _ in range(6)]
        deadline = time.monotonic() + 20
        while served.count("lora0@1") < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        row = ws.deploy("lora1@1", "live")  # the re-point, while six clients keep asking
        assert row.revision == 2
        while served.count("lora1@1") < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        stop.set()
        for f in futures:
            f.result()
    assert not failures, failures[:3]
    switch = served.index("lora1@1")
    assert served.count("lora0@1") >= 20 and set(served[switch + 12 :]) == {"lora1@1"}


def test_sigterm_lets_in_flight_requests_finish(lora_ws):
    ws = lora_ws
    fleet(ws, 1)
    from llmos.security.identities import init_admin

    token, _ = init_admin(ws.store)  # `llmos serve` asks for a token on every route by default
    auth = {"Authorization": f"Bearer {token}"}
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # requests wait 1.5 s in the batch window, so they are in flight when SIGTERM arrives
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llmos.cli.main",
            "--home",
            str(ws.home),
            "serve",
            "--port",
            str(port),
            "--max-wait-ms",
            "1500",
            "--max-batch",
            "64",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, (
                    proc.stderr.read() if proc.stderr else ""
                )
                time.sleep(0.2)
        assert httpx.post(f"{url}/v1/deployments/a0/predict", json={"inputs": TEXTS}).status_code == 401
        Client(url, token=token).predict("a0", TEXTS)  # loaded
        with ThreadPoolExecutor(4) as pool:
            sent = time.monotonic()
            futures = [
                pool.submit(
                    httpx.post,
                    f"{url}/v1/deployments/a0/predict",
                    json={"inputs": TEXTS},
                    headers=auth,
                    timeout=30,
                )
                for _ in range(4)
            ]
            time.sleep(0.7)  # connected and authenticated (a DB read) on a busy machine, still batching
            proc.send_signal(signal.SIGTERM)
            responses = [f.result() for f in futures]
        assert [r.status_code for r in responses] == [200] * 4
        assert time.monotonic() - sent >= 1.4  # they did wait for the batch window, then finished
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_deploy_commands(lora_ws, capsys):
    ws = lora_ws
    fleet(ws, 2)
    home = ["--home", str(ws.home)]
    assert main([*home, "deploy", "lora1", "--name", "x", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model"] == "lora1@1" and info["kind"] == "classifier" and info["revision"] == 1
    assert main([*home, "deploy", "lora0@1", "--name", "x"]) == 0
    assert "re-pointed (revision 2): x -> lora0@1" in capsys.readouterr().out
    assert main([*home, "deployments", "list", "--json"]) == 0
    assert [d["name"] for d in json.loads(capsys.readouterr().out)] == ["a0", "a1", "x"]
    assert main([*home, "deployments", "show", "x", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "lora0@1"
    assert main([*home, "undeploy", "x"]) == 0
    assert "undeployed x (was lora0@1)" in capsys.readouterr().out
    assert main([*home, "undeploy", "x"]) == 3
    assert "deployment 'x' not found" in capsys.readouterr().err
    assert main([*home, "deploy", "nosuch@2", "--name", "y"]) == 3
    assert "model 'nosuch@2' not found" in capsys.readouterr().err
    assert main([*home, "deploy", "lora0", "--name", "bad name"]) == 2
    assert "invalid deployment name 'bad name'" in capsys.readouterr().err
    assert main([*home, "deploy", "minilm", "--name", "e", "--optimize", "int8"]) == 2
    assert "--optimize int8 applies to fine-tuned text classifiers" in capsys.readouterr().err
    assert main([*home, "deploy", "lora0", "--name", "q", "--optimize", "int4"]) == 2
    assert "unknown --optimize 'int4'" in capsys.readouterr().err
    server = ServerThread(ws.store, policy=open_policy())
    with server as url:
        assert main([*home, "serve", "--port", str(server.port)]) == 2
        assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err
        Client(url).predict("a1", TEXTS)
        assert main([*home, "deployments", "show", "a1", "--url", url, "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["memory"]["as"] == "adapter" and shown["server"]["adapters"] == 1
        assert main([*home, "deployments", "list", "--url", url]) == 0
        assert "lora1@1" in capsys.readouterr().out


def test_serve_freezes_its_startup_heap():
    """`llmos serve` moves the start-up heap (torch, transformers, the app: about half a
    million objects) out of the garbage collector's full passes, which otherwise stalled
    every request for about 240 ms each time they ran. In a fresh process, as serve does."""
    code = (
        "import gc\n"
        "from llmos.api.server import _freeze_startup_heap\n"
        "before = gc.get_freeze_count()\n"
        "_freeze_startup_heap()\n"
        "print(before, gc.get_freeze_count())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    before, after = (int(x) for x in out.stdout.split())
    assert before == 0 and after > 100_000


def test_serve_workers_share_the_cores():
    code = (
        "import os, torch\n"
        "from llmos.api.server import _share_cores\n"
        "before = torch.get_num_threads()\n"
        "_share_cores(2)\n"
        "print(before, torch.get_num_threads(), os.cpu_count())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}

    def run() -> list[int]:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120, env=env
        )
        return [int(x) for x in out.stdout.split()]

    _, threads, cpus = run()
    assert threads == max(1, cpus // 2)
    env["OMP_NUM_THREADS"] = "2"
    before, threads, _ = run()
    assert threads == before  # an explicit setting wins
