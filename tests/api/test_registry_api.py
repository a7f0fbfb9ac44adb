"""`/v1/registry` over HTTP: model versions, lineage, the report's files (the PNG as
image/png), the zoo; an unknown model or file is a 404 naming it."""

from __future__ import annotations

import pytest

from tests.ops.conftest import METRICS, PNG


@pytest.fixture
def reg(api, filled):
    return api


def test_models_show_lineage_zoo(reg):
    [listed] = reg.get("/v1/registry/models", "viewer").json()
    shown = reg.get("/v1/registry/models/tiny@1", "developer").json()
    assert listed == shown and shown["ref"] == "tiny@1" and shown["metrics"] == METRICS
    assert shown["epsilon"] == 3.5 and shown["lineage"]["datasets"] == {"train": "intents@1", "test": None}
    assert reg.get("/v1/registry/models/tiny/lineage").json() == {"train": "intents@1", "test": None}
    assert reg.get("/v1/registry/models", params={"name": "nope"}).json() == []
    assert {e["alias"] for e in reg.get("/v1/registry/zoo").json()} == {"minilm", "smollm2-135m"}
    r = reg.get("/v1/registry/models/ghost")
    assert r.status_code == 404 and "model 'ghost' not found" in r.json()["error"]["message"]
    assert reg.get("/v1/registry/models", "app").status_code == 403
    # /v1/models stays OpenAI's list of deployments
    assert reg.get("/v1/models").json()["object"] == "list"


def test_report_files(reg):
    files = reg.get("/v1/registry/models/tiny/files", "viewer").json()
    assert [f["path"] for f in files] == ["report/confusion_matrix.png", "report/metrics.json", "spec.yaml"]
    r = reg.get("/v1/registry/models/tiny/files/report/confusion_matrix.png", "viewer")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content == PNG
    r = reg.get("/v1/registry/models/tiny/files/report/metrics.json")
    assert r.headers["content-type"] == "application/json" and r.json() == METRICS
    for path in ("model.safetensors", "report/..%2F..%2Fllmos.db", "nope.png"):
        r = reg.get(f"/v1/registry/models/tiny/files/{path}")
        assert r.status_code == 404 and "has no report file" in r.json()["error"]["message"], path
    assert reg.get("/v1/registry/models/ghost/files").status_code == 404
    schema = reg.get("/openapi.json").json()
    download = schema["paths"]["/v1/registry/models/{ref}/files/{path}"]["get"]
    assert "image/png" in download["responses"]["200"]["content"]
    assert download["x-operation"] == "model_file" and download["x-permission"] == "models:read"


def test_models_list_pages_in_the_server(reg, filled):
    from tests.ops.conftest import register_fake

    for name in ("alpha", "omega"):
        register_fake(filled, name)
    everything = [m["ref"] for m in reg.get("/v1/registry/models").json()]
    assert everything == ["alpha@1", "omega@1", "tiny@1"]  # by name, then version
    pages = [
        [m["ref"] for m in reg.get("/v1/registry/models", params={"limit": 2, "offset": o}).json()]
        for o in (0, 2, 4)
    ]
    assert pages == [["alpha@1", "omega@1"], ["tiny@1"], []]
    assert [m.ref for m in filled.models(limit=1, offset=1)] == ["omega@1"]
    for params, message in (
        ({"limit": 0}, "limit must be at least 1 (got 0)"),
        ({"offset": -1}, "offset must be >= 0 (got -1)"),
    ):
        r = reg.get("/v1/registry/models", params=params)
        assert r.status_code == 422 and r.json()["error"]["message"] == message, r.text
