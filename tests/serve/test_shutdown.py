"""A real `llmos serve` process stopped with SIGTERM while generations run: it exits
within the graceful period, the generations end with an error naming the shutdown (a
503, an error event in a stream), and a new server listens on the same port at once
although a client held a keep-alive connection (the port's connections are in TIME_WAIT).

The server process decodes slowly on purpose (a sleep per decoding step, patched in
before `llmos serve` runs), so the generations outlast the graceful period."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from llmos.api.server import free_port

SLOW_SERVE = (
    "import sys, time\n"
    "from llmos.models.generation import Generator\n"
    "_sample = Generator._sample\n"
    "def slow(self, logits, rows):\n"
    "    time.sleep(0.1)\n"
    "    return _sample(self, logits, rows)\n"
    "Generator._sample = slow\n"
    "from llmos.cli.main import main\n"
    "sys.exit(main())\n"
)

# about the serving process and the model, not the store: the store queries it makes run on
# both backends in test_http.py and test_feedback.py
pytestmark = pytest.mark.default_backend_only
GRACEFUL_S = 4


def _start(home, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["--home", str(home), "serve", "--port", str(port), "--insecure-no-auth"]
    args += ["--graceful", str(GRACEFUL_S), "--max-wait-ms", "1"]
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_SERVE, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_healthy(proc: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the server did not start: {proc.communicate()[1][-2000:]}")
        time.sleep(0.2)


def _stream(url: str) -> list[dict]:
    body = {"model": "tiny", "prompt": "hello how are", "max_tokens": 90, "stream": True}
    events = []
    with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=60) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                events.append(json.loads(line[6:]))
    return events


def test_sigterm_ends_generations_in_flight_and_the_port_is_free_at_once(ws, tiny_lm_dir):
    ws.deploy(str(tiny_lm_dir), "tiny")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start(ws.home, port)
    second = None
    try:
        _wait_healthy(proc, url)
        keep_alive = httpx.Client(timeout=60)  # a client that holds its connection open
        assert keep_alive.get(f"{url}/v1/models").status_code == 200
        body = {"model": "tiny", "prompt": "hello how are", "max_tokens": 90}
        with ThreadPoolExecutor(2) as pool:
            plain = pool.submit(httpx.post, f"{url}/v1/completions", json=body, timeout=60)
            streamed = pool.submit(_stream, url)
            time.sleep(1.5)  # both are decoding (90 steps of 0.1 s)
            stopped = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            answer, events = plain.result(), streamed.result()
        assert proc.wait(GRACEFUL_S + 10) == 0
        assert time.monotonic() - stopped < GRACEFUL_S + 3  # within the graceful period (and exit)
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "server_shutting_down"
        assert "shutting down" in answer.json()["error"]["message"]
        assert events[0]["choices"][0]["text"]  # it was streaming text
        assert events[-1]["error"]["code"] == "server_shutting_down"
        # at once on the same port, while the old connections are in TIME_WAIT
        second = _start(ws.home, port)
        _wait_healthy(second, url)
        assert keep_alive.get(f"{url}/v1/models").status_code == 200  # reconnects
        keep_alive.close()
    finally:
        for p in (proc, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
