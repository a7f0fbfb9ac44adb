"""The HTTP API on a real uvicorn server: predict, deployments, health, metrics, docs,
and every kind of bad input with its status code and a message naming the problem."""

from __future__ import annotations

import shutil
import threading
import time

import httpx
import pytest

from llmos import Client
from llmos.api.server import ServerThread
from llmos.core.errors import NotFoundError
from llmos.sdk.client import ServerError
from llmos.security.policy import open_policy
from llmos.serve.runtime import ServeConfig
from tests.conftest import tiny_spec
from tests.serve.conftest import fleet

TEXTS = ["my card has not arrived", "send money to my account"]


def test_predict_deployments_health_metrics_docs(lora_ws):
    ws = lora_ws
    fleet(ws, 2)
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1), policy=open_policy()) as url:
        client = Client(url)
        rows = client.predict("a0", TEXTS)
        assert rows == ws.predict("lora0@1", TEXTS) or [r["label"] for r in rows] == [
            r["label"] for r in ws.predict("lora0@1", TEXTS)
        ]
        assert set(rows[0]["probabilities"]) == {"card", "refund", "transfer"}
        assert client.predict("a1", "refund please")[0]["label"] in {"card", "refund", "transfer"}
        assert [d["name"] for d in client.deployments()] == ["a0", "a1"]
        shown = client.deployment("a0")
        assert shown["model"] == "lora0@1" and shown["memory"]["as"] == "adapter"
        assert shown["server"]["base_models"] == 1 and shown["server"]["adapters"] == 2
        assert client.health()["status"] == "ok"
        models = httpx.get(f"{url}/v1/models").json()
        assert [m["id"] for m in models["data"]] == ["a0", "a1"]
        metrics = httpx.get(f"{url}/metrics").text
        assert 'llmos_requests_total{route="/v1/deployments/{name}/predict",status="200"} 2.0' in metrics
        assert "llmos_adapters 2.0" in metrics and "process_resident_memory_bytes" in metrics
        assert "llmos_batch_inputs_bucket" in metrics
        assert httpx.get(f"{url}/docs").status_code == 200
        assert "/v1/chat/completions" in httpx.get(f"{url}/openapi.json").json()["paths"]
        # deploy and undeploy over HTTP too
        assert client.deploy("lora1@1", "a2")["revision"] == 1
        assert client.undeploy("a2")["name"] == "a2"
        with pytest.raises(NotFoundError, match="deployment 'a2' not found"):
            client.predict("a2", TEXTS)


def _post(url: str, path: str, **kwargs):
    return httpx.post(url + path, timeout=30, **kwargs)


def test_bad_input_gets_its_status_and_names_the_field(lora_ws):
    ws = lora_ws
    fleet(ws, 1)
    config = ServeConfig(max_wait_ms=1, max_inputs=3, max_input_chars=50, max_body_bytes=4000)
    with ServerThread(ws.store, config, policy=open_policy()) as url:
        r = _post(url, "/v1/deployments/nope/predict", json={"inputs": ["hi"]})
        assert r.status_code == 404 and "deployment 'nope' not found" in r.json()["error"]["message"]
        r = _post(
            url,
            "/v1/deployments/a0/predict",
            content=b'{"inputs": [',
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422 and "not valid JSON" in r.json()["error"]["message"]
        r = _post(url, "/v1/deployments/a0/predict", json={"texts": ["hi"]})
        assert r.status_code == 422 and r.json()["error"]["message"].startswith("inputs: Field required")
        r = _post(url, "/v1/deployments/a0/predict", json={"inputs": [1, 2]})
        assert r.status_code == 422 and "inputs" in r.json()["error"]["message"]
        r = _post(url, "/v1/deployments/a0/predict", json={"inputs": []})
        assert r.status_code == 422 and "inputs: give at least one input" in r.json()["error"]["message"]
        r = _post(url, "/v1/deployments/a0/predict", json={"inputs": ["a"] * 4})
        assert r.status_code == 413 and "4 inputs, more than the limit of 3" in r.json()["error"]["message"]
        r = _post(url, "/v1/deployments/a0/predict", json={"inputs": ["card " * 20]})
        assert r.status_code == 413 and "inputs[0]: 100 characters" in r.json()["error"]["message"]
        r = _post(url, "/v1/deployments/a0/predict", json={"inputs": ["x" * 5000]})
        assert r.status_code == 413 and "over the limit of 4000" in r.json()["error"]["message"]
        r = _post(
            url, "/v1/chat/completions", json={"model": "a0", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert r.status_code == 422 and "serves a classifier model" in r.json()["error"]["message"]
        assert _post(url, "/v1/deployments/a0/predict", json={"inputs": "card arrived"}).status_code == 200
        # `curl -d '{...}'` labels its JSON as a form: read as JSON, like a body without a type
        form = {"content-type": "application/x-www-form-urlencoded"}
        r = _post(url, "/v1/deployments/a0/predict", content=b'{"inputs": ["card arrived"]}', headers=form)
        assert r.status_code == 200 and r.json()["predictions"][0]["label"]


def test_full_queue_answers_429_with_retry_after(lora_ws):
    ws = lora_ws
    fleet(ws, 1)
    server = ServerThread(
        ws.store, ServeConfig(max_wait_ms=0, max_batch=1, max_queue=1), policy=open_policy()
    )
    with server as url:
        client = Client(url)
        client.predict("a0", TEXTS)  # loaded
        runtime = server.runtime
        (slot,) = runtime.pager.slots.values()
        results: list[object] = []
        with slot.lock:  # the base model is busy: its worker waits, the queue fills
            first = threading.Thread(target=lambda: results.append(client.predict("a0", TEXTS)))
            first.start()
            time.sleep(0.3)  # the worker has taken the first request and waits for the model
            assert runtime.batcher.depth() == 0
            second = threading.Thread(target=lambda: results.append(client.predict("a0", TEXTS)))
            second.start()
            _wait_for(lambda: runtime.batcher.depth() == 1)
            r = _post(url, "/v1/deployments/a0/predict", json={"inputs": TEXTS})
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
            assert "queue for lora0@1 is full" in r.json()["error"]["message"]
        first.join(30)
        second.join(30)
        assert len(results) == 2  # both queued requests were answered once the model was free


def test_model_failing_to_load_is_503_while_others_serve(lora_ws, tiny_model_dir, tmp_path):
    ws = lora_ws
    fleet(ws, 1)
    doomed = tmp_path / "doomed-base"
    shutil.copytree(tiny_model_dir, doomed)
    ws.train(tiny_spec(doomed, name="orphan", method="lora", train={"epochs": 1, "seed": 1}))
    ws.deploy("orphan", "broken")
    shutil.rmtree(doomed)  # its base model is gone
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1), policy=open_policy()) as url:
        for _ in range(2):
            r = _post(url, "/v1/deployments/broken/predict", json={"inputs": TEXTS})
            assert r.status_code == 503
            assert r.json()["error"]["message"].startswith("model orphan@1 failed to load: ")
            assert _post(url, "/v1/deployments/a0/predict", json={"inputs": TEXTS}).status_code == 200
        with pytest.raises(ServerError, match="failed to load") as info:
            Client(url).predict("broken", TEXTS)
        assert info.value.status == 503


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_request_over_the_timeout_is_504_and_skipped(lora_ws):
    ws = lora_ws
    fleet(ws, 1)
    server = ServerThread(ws.store, ServeConfig(max_wait_ms=0, timeout_s=0.3), policy=open_policy())
    with server as url:
        client = Client(url)
        client.predict("a0", TEXTS)
        (slot,) = server.runtime.pager.slots.values()
        batches: list[int] = []
        server.runtime.observers.append(lambda inputs, _groups: batches.append(inputs))
        with slot.lock:
            first = threading.Thread(
                target=lambda: _post(url, "/v1/deployments/a0/predict", json={"inputs": ["x"]})
            )
            first.start()
            time.sleep(0.1)  # the worker holds the first request and waits for the model
            r = _post(url, "/v1/deployments/a0/predict", json={"inputs": TEXTS})  # queued behind it
            assert r.status_code == 504 and "no answer within 0.3 s" in r.json()["error"]["message"]
        first.join(30)
        assert client.predict("a0", TEXTS)[0]["label"]
        assert batches == [1, 2]  # the abandoned request never ran


def test_a_tabular_model_answers_rows_given_as_dicts(ws):
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2] / "examples"
    ws.import_dataset(root / "data" / "claims.csv", "claims", label="decision")
    spec = yaml.safe_load((root / "claims_tabular.yaml").read_text())
    spec["train"]["epochs"] = 2
    ws.train(spec)
    ws.deploy("claims-tabular", "claims")
    rows = [
        {"amount": 481.46, "days_to_report": 52, "segment": "new"},
        {"amount": 20.0, "days_to_report": 1, "segment": "gold"},
    ]
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1), policy=open_policy()) as url:
        served = Client(url).predict("claims", rows)
        assert [r["label"] for r in served] == [r["label"] for r in ws.predict("claims-tabular", rows)]
        r = _post(url, "/v1/deployments/claims/predict", json={"inputs": ["just text"]})
        assert r.status_code == 422 and "amount" in r.json()["error"]["message"]
