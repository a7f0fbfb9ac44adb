"""The generation path under a demanding client: a timed-out, cancelled or disconnected
request frees its place in the batch within a decoding step and leaves the engine
serving; a dead engine shows in /healthz; every request is bounded; one bad request in
a batch fails alone. The tiny Llama is slowed down per decoding step so that requests
are still running when the test acts."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from llmos.api.server import ServerThread
from llmos.models.generation import GenerationEngine, Generator
from llmos.security.policy import open_policy
from llmos.serve.runtime import ServeConfig
from tests.conftest import record_steps

# about the serving process and the model, not the store: the store queries it makes run on
# both backends in test_http.py and test_feedback.py
pytestmark = pytest.mark.default_backend_only

STEP_S = 0.03


@pytest.fixture
def steps(monkeypatch):
    """Slow decoding (STEP_S a step) and record each step's rows (their seeds)."""
    return record_steps(monkeypatch, STEP_S)


@pytest.fixture
def tiny(ws, tiny_lm_dir):
    ws.deploy(str(tiny_lm_dir), "tiny")
    return ws


def _wait(predicate, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _rows_after(steps, moment: float, seed: int) -> int:
    return sum(1 for at, seeds in steps if at > moment and seed in seeds)


def test_a_timed_out_generation_leaves_the_batch_and_the_engine_serving(tiny, steps):
    config = ServeConfig(max_wait_ms=1, timeout_s=0.4)
    with ServerThread(tiny.store, config, policy=open_policy()) as url:
        slow = {"model": "tiny", "prompt": "hello how are", "max_tokens": 80, "seed": 41}
        r = httpx.post(f"{url}/v1/completions", json=slow, timeout=30)
        assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"
        gave_up = time.monotonic()
        time.sleep(4 * STEP_S)
        assert _rows_after(steps, gave_up + 2 * STEP_S, 41) == 0  # it left the batch at once
        for _ in range(3):  # and the engine still answers (it used to die: 504 for ever)
            r = httpx.post(
                f"{url}/v1/completions", json={"model": "tiny", "prompt": "hi", "max_tokens": 2}, timeout=30
            )
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["finish_reason"] in ("length", "stop")
        health = httpx.get(f"{url}/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"


@pytest.mark.serial  # asserts on its own wall time
def test_a_client_that_goes_away_frees_its_slot(tiny, steps):
    with ServerThread(tiny.store, ServeConfig(max_wait_ms=1), policy=open_policy()) as url:
        # a stream whose client closes it after the first piece of text
        body = {"model": "tiny", "prompt": "hello how are", "max_tokens": 80, "seed": 42, "stream": True}
        with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=30) as r:
            for line in r.iter_lines():
                if line.startswith("data: {") and '"text": ""' not in line:
                    break
        left = time.monotonic()
        # a plain request whose client stops waiting
        plain = {"model": "tiny", "prompt": "hello how are", "max_tokens": 80, "seed": 43}
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/completions", json=plain, timeout=0.3)
        dropped = time.monotonic()
        time.sleep(0.5)
        assert _rows_after(steps, left + 0.3, 42) == 0
        assert _rows_after(steps, dropped + 0.4, 43) == 0  # the disconnect is seen within 0.25 s
        assert httpx.get(f"{url}/healthz").json()["status"] == "ok"


def test_generations_in_flight_are_counted_down_after_a_disconnect(tiny, steps):
    server = ServerThread(tiny.store, ServeConfig(max_wait_ms=1), policy=open_policy())
    with server as url:
        body = {"model": "tiny", "prompt": "hello how are", "max_tokens": 80, "stream": True, "seed": 44}
        with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=30) as r:
            next(r.iter_lines())
            counted = server.runtime.generations
        closed = time.monotonic()
        assert counted <= 1
        assert _wait(lambda: server.runtime.generations == 0, 3.0)
        time.sleep(4 * STEP_S)
        assert _rows_after(steps, closed + 2 * STEP_S, 44) == 0


def test_a_dead_engine_is_not_healthy(tiny, monkeypatch):
    def die(self):
        raise RuntimeError("boom")

    monkeypatch.setattr(GenerationEngine, "_loop", die)
    server = ServerThread(tiny.store, ServeConfig(max_wait_ms=1, timeout_s=5), policy=open_policy())
    with server as url:
        body = {"model": "tiny", "prompt": "hi", "max_tokens": 2}
        r = httpx.post(f"{url}/v1/completions", json=body, timeout=30)
        assert r.status_code == 503 and "engine failed (RuntimeError: boom)" in r.json()["error"]["message"]
        assert _wait(lambda: not all(e.alive for e in server.runtime.engines()))
        health = httpx.get(f"{url}/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "error"
        assert "generation engine died: RuntimeError: boom" in health.json()["problems"][0]


@pytest.mark.serial  # asserts on its own wall time
def test_limits_answer_400_at_once(tiny):
    config = ServeConfig(max_wait_ms=1, max_new_tokens=50)
    with ServerThread(tiny.store, config, policy=open_policy()) as url:

        def post(**fields):
            body = {"model": "tiny", "prompt": "hello how are", **fields}
            return httpx.post(f"{url}/v1/completions", json=body, timeout=10)

        started = time.monotonic()
        r = post(max_tokens=1_000_000_000)
        assert r.status_code == 400 and time.monotonic() - started < 2
        error = r.json()["error"]
        assert error["param"] == "max_tokens" and "limit of 50" in error["message"]
        r = post(max_tokens=50, prompt="hello " * 60)  # the tiny Llama's context is 96 tokens
        assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
        r = post(prompt="hello " * 100)
        assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
        assert post(temperature=2.5).json()["error"]["param"] == "temperature"
        assert post(temperature=2.5).status_code == 422
        assert post(top_p=0).status_code == 422
        assert post(top_p=1.5).status_code == 422
        # without max_tokens a generation stops at the server's limit
        done = post(temperature=1.0, seed=1).json()
        assert done["usage"]["completion_tokens"] <= 50


def test_one_bad_request_in_a_batch_fails_alone(tiny, monkeypatch):
    """Four requests decoded as one batch: a tiny top_p (it rounds to 0 in float32) is
    greedy decoding, and a row whose sampling fails fails only its own request."""
    original = Generator._sample_one

    def fragile(scores, row):
        if row.params.seed == 13:
            raise RuntimeError("probability tensor contains inf")
        return original(scores, row)

    monkeypatch.setattr(Generator, "_sample_one", staticmethod(fragile))
    config = ServeConfig(max_wait_ms=400, max_batch=8)
    server = ServerThread(tiny.store, config, policy=open_policy())
    with server as url, ThreadPoolExecutor(4) as pool:
        httpx.post(f"{url}/v1/completions", json={"model": "tiny", "prompt": "hi", "max_tokens": 1})  # loaded
        base = {"model": "tiny", "prompt": "hello how are", "max_tokens": 5}
        bodies = [
            {**base, "temperature": 1.0, "seed": 13},  # bad: its sampling fails
            {**base, "temperature": 1.0, "top_p": 1e-50, "seed": 1},
            {**base},
            {**base, "temperature": 0.7, "seed": 2},
        ]
        barrier = threading.Barrier(4)

        def send(body):
            barrier.wait()
            return httpx.post(f"{url}/v1/completions", json=body, timeout=30)

        answers = list(pool.map(send, bodies))
        engine = server.runtime.engines()[0]
        assert 4 in engine.batches  # they were one batch
        assert answers[0].status_code == 500  # a bug of its own, in OpenAI's error shape
        assert answers[0].json()["error"]["type"] == "server_error"
        assert [a.status_code for a in answers[1:]] == [200, 200, 200], [a.text for a in answers]
        greedy = answers[2].json()["choices"][0]["text"]
        assert answers[1].json()["choices"][0]["text"] == greedy  # tiny top_p: greedy
