"""Fixtures for serving: a workspace with many LoRA classifiers over one tiny BERT.

One LoRA model is trained for real; the others are copies of its folder with their
adapter and head weights redrawn at random (seeded) and registered as models of their
own, so every deployment has different outputs without 50 training runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tests.conftest import tiny_spec


def lora_spec(model_dir: Path, name: str = "lora0") -> dict[str, object]:
    return tiny_spec(
        model_dir,
        name=name,
        method={"type": "lora", "r": 4, "target_modules": ["query", "value"]},
        train={"epochs": 1, "batch_size": 16, "lr": 3e-3, "head_lr": 1e-2, "seed": 7},
    )


def register_variant(ws, source: Path, name: str, seed: int) -> str:
    """Register a copy of the model folder `source` with redrawn adapter and head weights."""
    from safetensors.torch import load_file, save_file

    from llmos.store.models import register_model

    folder = ws.home / "variants" / name
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("report"))
    gen = torch.Generator().manual_seed(seed)
    for path in [*sorted((folder / "adapter").glob("*.safetensors")), folder / "head.safetensors"]:
        tensors = load_file(str(path))
        save_file({k: torch.randn(v.shape, generator=gen) * 0.5 for k, v in tensors.items()}, str(path))
    base = ws.model("lora0")
    row = register_model(
        ws.store,
        name=name,
        task=base.task,
        base_model=base.base_model,
        method=base.method,
        spec=base.spec,
        folder=folder,
        train_dataset_id=base.train_dataset_id,
        test_dataset_id=base.test_dataset_id,
        split=base.split,
        metrics={},
        train_seconds=0.0,
    )
    shutil.rmtree(folder)
    return row.ref


@pytest.fixture
def lora_ws(ws, intents_csv, tiny_model_dir):
    """A workspace with `lora0` trained on the tiny BERT, ready for `register_variant`."""
    ws.import_dataset(intents_csv, "intents")
    ws.train(lora_spec(tiny_model_dir))
    return ws


def fleet(ws, n: int) -> list[str]:
    """Deployments a0..a{n-1}: a0 on the trained model, the rest on random variants."""
    source = ws.model_path("lora0")
    refs = ["lora0@1"] + [register_variant(ws, source, f"lora{i}", seed=i) for i in range(1, n)]
    for i, ref in enumerate(refs):
        ws.deploy(ref, f"a{i}")
    return refs
