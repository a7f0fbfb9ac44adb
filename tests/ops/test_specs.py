"""Spec system calls: every problem with its path, a valid spec read with its defaults,
warnings for datasets the workspace lacks, and the JSON Schema."""

from __future__ import annotations

import pytest
import yaml

from llmos.core.errors import SpecError
from llmos.ops import specs as ops

VALID = {
    "name": "x",
    "model": "minilm",
    "data": {"train": "intents"},
    "inputs": [{"name": "text"}],
    "outputs": [{"name": "label"}],
}
BAD = {**VALID, "train": {"lr": 0, "epochs": "three", "extra": 1}}


def test_every_problem_with_its_path(ws):
    with pytest.raises(SpecError) as caught:
        ops.check_spec(ws.context, BAD, "spec.yaml")
    problems = caught.value.problems
    assert len(problems) == 3
    assert "train.lr: must be > 0" in problems and "train.extra: unknown key" in problems
    assert any(p.startswith("train.epochs:") for p in problems)
    message = caught.value.message
    assert "\n" not in message and message.startswith("spec.yaml: 3 problems:")
    assert all(p in message for p in problems)


def test_yaml_text_and_warnings_for_missing_datasets(ws, intents_csv):
    check = ops.check_spec(ws.context, yaml.safe_dump(VALID))
    assert check.valid and check.name == "x" and check.summary == "text-classification, minilm + lora"
    assert check.spec["train"]["epochs"] >= 1 and check.spec["data"]["split"]  # defaults filled in
    assert check.warnings == ["data.train: dataset 'intents' not found (datasets: none yet); import it first"]
    ws.import_dataset(intents_csv, "intents")
    assert ops.check_spec(ws.context, VALID).warnings == []
    with pytest.raises(SpecError, match=r"s\.yaml: not valid YAML at line 2"):
        ops.check_spec(ws.context, "name: x\n  bad: [", "s.yaml")
    with pytest.raises(SpecError, match="a spec is a YAML mapping"):
        ops.check_spec(ws.context, "- a list")


def test_schema(ws):
    schema = ops.spec_schema(ws.context)
    assert schema["title"] == "TaskSpec" and "train" in schema["properties"]
