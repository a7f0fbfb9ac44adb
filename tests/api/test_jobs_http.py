"""`/v1/jobs` over real HTTP with the token policy: submission (and its refusals), listing,
cancel and retry (409 once finished), the event stream followed to its end and resumed,
the kernel's status, and prediction with a registered model."""

from __future__ import annotations

import json
import urllib.request

import httpx
import pytest

from llmos import Client
from llmos.core.errors import JobError, NotFoundError, SpecError
from llmos.serve.errors import Forbidden
from tests.conftest import tiny_spec

FAST = {"epochs": 1, "batch_size": 16, "lr": 3e-3, "head_lr": 1e-2, "seed": 7}


def test_a_viewer_submitting_training_gets_403_and_nothing_is_queued(served, ws, tiny_model_dir):
    body = {"kind": "train", "spec": tiny_spec(tiny_model_dir)}
    r = httpx.post(f"{served.url}/v1/jobs", json=body, headers=served.headers("viewer"))
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "a viewer token may not do this (route /v1/jobs needs train)"
    assert httpx.get(f"{served.url}/v1/jobs", headers=served.headers("viewer")).json() == []
    assert ws.jobs() == []
    with pytest.raises(Forbidden):
        Client(served.url, served.tokens["viewer"]).submit_train(tiny_spec(tiny_model_dir))
    assert httpx.post(f"{served.url}/v1/jobs", json=body).status_code == 401


def test_bad_submissions_and_unknown_jobs(served, ws, tiny_model_dir):
    dev = served.headers("developer")
    spec = tiny_spec(tiny_model_dir, train={"epochs": 0, "batch_size": -1, "lrr": 1})
    r = httpx.post(f"{served.url}/v1/jobs", json={"kind": "train", "spec": spec}, headers=dev)
    assert r.status_code == 422 and r.json()["error"]["llmos_error"] == "SpecError"
    message = r.json()["error"]["message"]
    assert "3 problems" in message and all(
        p in message for p in ("train.epochs", "train.batch_size", "train.lrr")
    )
    r = httpx.post(
        f"{served.url}/v1/jobs", json={"kind": "train", "spec": "name: x\nmodel: y\n"}, headers=dev
    )
    assert r.status_code == 422 and "data: required" in r.json()["error"]["message"]
    r = httpx.post(
        f"{served.url}/v1/jobs", json={"kind": "eval", "model": "ghost", "data": "intents"}, headers=dev
    )
    assert r.status_code == 404 and r.json()["error"]["message"].startswith("model 'ghost' not found")
    r = httpx.post(f"{served.url}/v1/jobs", json={"kind": "bake"}, headers=dev)
    assert r.status_code == 422
    calls = [("GET", ""), ("POST", "/cancel"), ("POST", "/retry"), ("GET", "/log"), ("GET", "/events")]
    for method, path in [(m, f"/v1/jobs/99{tail}") for m, tail in calls]:
        r = httpx.request(method, served.url + path, headers=dev)
        assert r.status_code == 404 and "job 99 not found" in r.json()["error"]["message"], path
    assert ws.jobs() == []
    client = Client(served.url, served.tokens["developer"])
    with pytest.raises(SpecError, match=r"train\.lrr"):
        client.submit_train(spec)
    with pytest.raises(NotFoundError, match="job 99 not found"):
        client.job(99)


def test_train_follow_events_to_the_end_then_cancel_is_409(served, ws, tiny_model_dir):
    client = Client(served.url, served.tokens["developer"])
    job = client.submit_train(tiny_spec(tiny_model_dir, train=FAST), cpus=1, priority=2)
    assert (job.state, job.kind, job.priority) == ("queued", "train", 2)
    assert [j.id for j in client.jobs(state="queued")] + [j.id for j in client.jobs(state="running")] == [
        job.id
    ]
    events = list(client.job_events(job.id))
    assert events[0].type == "state" and events[-1].type == "end"
    end = events[-1]
    assert end.state == "succeeded" and end.info.result["model"] == "tiny@1"
    assert ws.model("tiny@1").job_id == job.id  # registered in the server's workspace
    lines = [e.line for e in events if e.type == "log"]
    assert lines == client.job_log(job.id).log.splitlines()

    # the raw stream: SSE, JSON data, resumable with Last-Event-ID
    middle = [e for e in events if e.type == "log"][2]
    request = urllib.request.Request(
        f"{served.url}/v1/jobs/{job.id}/events",
        headers={**served.headers("viewer"), "Last-Event-ID": str(middle.id)},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = response.read().decode()
    blocks = [b for b in raw.split("\n\n") if b.strip()]
    data = [json.loads(line[6:]) for b in blocks for line in b.splitlines() if line.startswith("data: ")]
    assert data[-1]["type"] == "end" and data[-1]["info"]["state"] == "succeeded"
    assert [d["line"] for d in data if d["type"] == "log"] == lines[3:]

    with pytest.raises(
        JobError, match=f"job {job.id} has already succeeded; there is nothing to cancel"
    ) as caught:
        client.cancel_job(job.id)
    assert caught.value.status == 409
    r = httpx.post(f"{served.url}/v1/jobs/{job.id}/retry", headers=served.headers("developer"))
    assert r.status_code == 409 and "is succeeded, not failed or cancelled" in r.json()["error"]["message"]
    assert client.wait_job(job.id).state == "succeeded"
    status = client.kernel_status()
    assert status.queued == 0 and status.active == 0

    # a registered model answers in the server's process; evaluation is a job
    answer = client.predict_model("tiny", ["my card has not arrived", "refund please"])
    assert answer.model == "tiny@1" and len(answer.predictions) == 2
    assert set(answer.predictions[0]["probabilities"]) == {"card", "refund", "transfer"}
    assert client.evaluate("tiny@1", "intents")["num_examples"] == 150
    viewer = httpx.post(
        f"{served.url}/v1/registry/models/tiny/predict",
        json={"inputs": "hi"},
        headers=served.headers("viewer"),
    )
    assert viewer.status_code == 403


def test_cancel_a_queued_job_then_retry_it(served, ws, tiny_model_dir):
    client = Client(served.url, served.tokens["developer"])
    ws.submit_train(tiny_spec(tiny_model_dir, train=FAST), cpus=2, start_kernel=False)  # holds the kernel
    job = client.submit_train(tiny_spec(tiny_model_dir, name="second", train=FAST), cpus=2)
    cancelled = client.cancel_job(job.id, wait=1)
    assert cancelled.state == "cancelled"
    again = client.retry_job(job.id)
    assert again.state == "queued" and again.attempts == 0
    assert client.wait_job(job.id).state == "succeeded"
    assert [j.state for j in client.jobs()] == ["succeeded", "succeeded"]
