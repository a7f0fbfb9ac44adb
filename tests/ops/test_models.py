"""Registry system calls: versions with their spec, lineage, metrics and privacy spend,
the report's files (bytes of one, on an encrypted workspace too), and the zoo."""

from __future__ import annotations

import json

import pytest

from llmos.core.errors import NotFoundError
from llmos.ops import models as ops
from llmos.serve.errors import Forbidden
from tests.ops.conftest import METRICS, PNG, as_role, register_fake


def test_models_model_lineage(filled):
    ctx = filled.context
    [listed] = ops.models(ctx)
    shown = ops.model(ctx, "tiny")
    assert listed == shown and shown.ref == "tiny@1" and shown.version == 1
    assert (shown.task, shown.method, shown.base_model) == ("text-classification", "lora", "tiny-bert")
    assert shown.accuracy == 0.9 and shown.epsilon == 3.5 and shown.metrics == METRICS
    assert shown.spec["privacy"]["epsilon"] == 4 and shown.train_seconds == 1.2
    assert shown.lineage.datasets.train == "intents@1" and shown.split["rows"]["test"] == 30
    assert shown.train_dataset_id is not None and shown.test_dataset_id is None
    assert ops.lineage(ctx, "tiny@1") == {"train": "intents@1", "test": None}
    assert "model.safetensors" in shown.artifacts
    assert ops.models(ctx, "other") == []
    with pytest.raises(NotFoundError, match="model 'ghost' not found"):
        ops.model(ctx, "ghost")


def test_report_files_and_their_bytes(filled):
    ctx = filled.context
    files = {f.path: f.media_type for f in ops.model_files(ctx, "tiny")}
    assert files == {
        "report/confusion_matrix.png": "image/png",
        "report/metrics.json": "application/json",
        "spec.yaml": "application/yaml",
    }
    assert ops.model_file(ctx, "tiny", "report/confusion_matrix.png") == PNG
    assert json.loads(ops.model_file(ctx, "tiny@1", "report/metrics.json")) == METRICS
    for path in ("model.safetensors", "../llmos.db", "report/../model.safetensors", "/etc/passwd"):
        with pytest.raises(NotFoundError, match="has no report file"):
            ops.model_file(ctx, "tiny", path)


def test_files_of_an_encrypted_workspace(ws, intents_csv):
    ws.enable_encryption()
    ws.import_dataset(intents_csv, "intents")
    register_fake(ws)
    blob = ws.store.artifacts.path(ops.model(ws.context, "tiny").artifacts["report/confusion_matrix.png"])
    assert PNG not in blob.read_bytes()  # stored encrypted
    assert ops.model_file(ws.context, "tiny", "report/confusion_matrix.png") == PNG


def test_zoo_and_permissions(filled):
    assert {e.alias for e in ops.zoo(filled.context)} == {"minilm", "smollm2-135m"}
    assert ops.model(as_role(filled, "viewer"), "tiny").ref == "tiny@1"
    with pytest.raises(Forbidden, match="'models:read' permission"):
        ops.model_file(as_role(filled, "app"), "tiny", "report/metrics.json")
