"""Acceptance of F8, bad input over HTTP: each answer is one clear message naming the field,
file or id at fault, with the right status, and nothing is stored (datasets, models, jobs
and artifact files are compared before and after every refusal).

Against a real server (uvicorn in a thread) with the token policy and a small upload
limit, so the 413 is cheap to provoke.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from llmos.api.server import ServerThread
from llmos.security.identities import add_user, create_token, init_admin
from llmos.security.policy import build_policy
from llmos.serve.runtime import ServeConfig
from tests.conftest import snapshot, tiny_spec

LIMIT = 64 * 1024  # bytes an upload may have here


@pytest.fixture
def server(ws, intents_csv, monkeypatch):
    monkeypatch.setenv("LLMOS_KERNEL_IDLE_EXIT", "2")
    ws.import_dataset(intents_csv, "intents")
    admin = init_admin(ws.store, "root")[0]
    add_user(ws.store, "viv", "viewer")
    viewer = create_token(ws.store, "viv")[0]
    config = ServeConfig(max_wait_ms=1, max_upload_bytes=LIMIT)
    with ServerThread(ws.store, config, policy=build_policy(ws.store)) as url:
        yield {
            "admin": httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=60),
            "viewer": httpx.Client(base_url=url, headers={"Authorization": f"Bearer {viewer}"}, timeout=60),
        }


def kept(ws) -> dict[str, Any]:
    """What a refusal must leave as it was."""
    state = snapshot(ws.home)
    tables = state["tables"]
    assert isinstance(tables, dict)
    return {
        "datasets": tables.get("dataset_versions"),
        "models": tables.get("model_versions"),
        "jobs": tables.get("jobs"),
        "files": state["files"],
    }


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()["error"]
    assert body["message"] and "\n" not in body["message"]
    return body


def test_uploads_that_are_refused_store_nothing(server, ws):
    http = server["admin"]
    before = kept(ws)

    empty = error(http.post("/v1/datasets", files={"file": ("empty.csv", b"")}, data={"name": "x"}), 422)
    assert "empty.csv" in empty["message"] and "empty" in empty["message"]

    latin = "text,label\ncaf\xe9 au lait,card\n".encode("latin-1")
    bad = error(http.post("/v1/datasets", files={"file": ("latin.csv", latin)}, data={"name": "x"}), 422)
    assert "latin.csv" in bad["message"] and "UTF-8" in bad["message"]

    big = b"text,label\n" + b"a long enough line of text,card\n" * (LIMIT // 20)
    over = error(http.post("/v1/datasets", files={"file": ("big.csv", big)}, data={"name": "x"}), 413)
    assert str(LIMIT) in over["message"] or f"{LIMIT // 1024} KiB" in over["message"], over["message"]

    assert kept(ws) == before


def test_a_spec_with_three_errors_names_all_three(server, ws, tiny_model_dir):
    before = kept(ws)
    spec = tiny_spec(tiny_model_dir, method="lorra", train={"epochs": 0, "lr": -1.0})
    body = error(server["admin"].post("/v1/jobs", json={"kind": "train", "spec": spec}), 422)
    for path in ("method", "train.epochs", "train.lr"):
        assert path in body["message"], (path, body["message"])
    assert len(body["problems"]) == 3, body["problems"]
    body = error(server["admin"].post("/v1/specs/check", json={"spec": spec}), 422)
    assert len(body["problems"]) == 3
    assert kept(ws) == before


def test_unknown_job_model_and_dataset_are_404(server, ws):
    http = server["admin"]
    before = kept(ws)
    assert "job 4242" in error(http.get("/v1/jobs/4242"), 404)["message"]
    assert "nope" in error(http.get("/v1/registry/models/nope"), 404)["message"]
    assert "nope" in error(http.get("/v1/datasets/nope@3"), 404)["message"]
    assert (
        "nope"
        in error(http.post("/v1/jobs", json={"kind": "eval", "model": "nope", "data": "intents"}), 404)[
            "message"
        ]
    )
    assert kept(ws) == before


def test_a_viewer_submitting_training_is_403_and_nothing_is_queued(server, ws, tiny_model_dir):
    before = kept(ws)
    spec = tiny_spec(tiny_model_dir)
    body = error(server["viewer"].post("/v1/jobs", json={"kind": "train", "spec": spec}), 403)
    assert "viewer" in body["message"]
    assert kept(ws) == before


def test_cancelling_a_finished_job_is_409(server, ws, tiny_model_dir):
    http = server["admin"]
    spec = tiny_spec(tiny_model_dir, train={"epochs": 1, "batch_size": 16, "seed": 7})
    job = http.post("/v1/jobs", json={"kind": "train", "spec": spec, "cpus": 1}).json()
    with http.stream("GET", f"/v1/jobs/{job['id']}/events", timeout=None) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:") and '"type":"end"' in line.replace(" ", ""):
                break
    assert http.get(f"/v1/jobs/{job['id']}").json()["state"] == "succeeded"
    before = kept(ws)
    body = error(http.post(f"/v1/jobs/{job['id']}/cancel"), 409)
    assert f"job {job['id']}" in body["message"] and "succeeded" in body["message"]
    assert kept(ws) == before
