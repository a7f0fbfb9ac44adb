"""`/v1/specs` over HTTP: a spec with errors answers 422 naming every problem, in the
message and as the list `error.problems`; a valid one answers 200 as llmos reads it."""

from __future__ import annotations

import yaml

from tests.ops.test_specs import BAD, VALID


def test_three_errors_422_with_every_path(api):
    r = api.post("/v1/specs/check", "viewer", json={"spec": BAD, "source": "spec.yaml"})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["llmos_error"] == "SpecError" and len(error["problems"]) == 3
    for path in ("train.lr", "train.epochs", "train.extra"):
        assert path in error["message"] and any(p.startswith(path + ":") for p in error["problems"])
    assert error["message"].startswith("spec.yaml: 3 problems:") and "\n" not in error["message"]


def test_valid_spec_200_yaml_text_and_schema(api, intents_csv):
    r = api.post("/v1/specs/check", json={"spec": yaml.safe_dump(VALID)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valid"] and body["task"] == "text-classification" and len(body["warnings"]) == 1
    r = api.post("/v1/specs/check", json={"spec": "name: [", "source": "s.yaml"})
    assert r.status_code == 422 and "s.yaml: not valid YAML" in r.json()["error"]["message"]
    assert api.post("/v1/specs/check", json={"nospec": 1}).status_code == 422
    assert api.get("/v1/specs/schema", "viewer").json()["title"] == "TaskSpec"
    assert api.get("/v1/specs/schema", "none").status_code == 401
