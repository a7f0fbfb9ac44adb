"""Fixtures of the system-call tests: a workspace with a dataset and a registered model
(its folder written by hand, so no training runs), and contexts of each role."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmos.ops.context import Actor, Context

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))  # what a report's confusion matrix starts with
PRIVACY = {"epsilon": 3.5, "target_epsilon": 4, "delta": 1e-4, "noise_multiplier": 1.1,
           "max_grad_norm": 1.0, "accountant": "rdp", "steps": 10}  # fmt: skip
METRICS = {"accuracy": 0.9, "macro_f1": 0.85, "privacy": PRIVACY}


def register_fake(ws, name: str = "tiny", train: str | None = "intents@1") -> str:
    """Register a model whose folder holds weights, a spec and a report."""
    from llmos.store.datasets import get_dataset
    from llmos.store.models import register_model

    folder = ws.home.parent / f"{name}-folder"
    (folder / "report").mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "spec.yaml").write_text("name: tiny\n")
    (folder / "report" / "metrics.json").write_text(json.dumps(METRICS))
    (folder / "report" / "confusion_matrix.png").write_bytes(PNG)
    train_id = get_dataset(ws.store, train).id if train else None
    row = register_model(
        ws.store,
        name=name,
        task="text-classification",
        base_model="tiny-bert",
        method="lora",
        spec={"name": name, "privacy": {"epsilon": 4}},
        folder=folder,
        train_dataset_id=train_id,
        test_dataset_id=None,
        split={"split": "test 0.2 seed 1", "rows": {"train": 120, "test": 30}},
        metrics=METRICS,
        train_seconds=1.23,
    )
    return row.ref


@pytest.fixture
def filled(ws, intents_csv):
    """`ws` with dataset intents@1 and model tiny@1 trained on it."""
    ws.import_dataset(intents_csv, "intents")
    register_fake(ws)
    return ws


def as_role(ws, role: str) -> Context:
    return Context(ws.store, Actor(f"someone-{role}", role))


def stored(home: Path) -> dict[str, object]:
    """What a failed import must leave as it was: the dataset rows and the artifact files
    (the audit log does record the failed attempt)."""
    from tests.conftest import snapshot

    state = snapshot(home)
    tables = state["tables"]
    assert isinstance(tables, dict)
    return {"datasets": tables.get("dataset_versions"), "files": state["files"]}
