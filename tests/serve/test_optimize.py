"""`--optimize int8`: a quantised encoder classifier is served from less memory with
almost the same outputs, and `llmos eval --optimize int8` reports the accuracy change."""

from __future__ import annotations

import asyncio
import json

import pytest

from llmos.cli.main import main
from llmos.serve.runtime import ServeConfig, ServeRuntime
from tests.conftest import make_rows, tiny_spec


def test_int8_deployment_and_eval(ws, intents_csv, tiny_model_dir, capsys):
    ws.import_dataset(intents_csv, "intents")
    ws.train(
        tiny_spec(
            tiny_model_dir, train={"epochs": 6, "batch_size": 16, "lr": 3e-3, "head_lr": 1e-2, "seed": 7}
        )
    )
    ws.deploy("tiny", "plain")
    ws.deploy("tiny", "fast", optimize="int8")
    texts = make_rows(30, seed=5)["text"].tolist()
    runtime = ServeRuntime(ws.store, ServeConfig(max_wait_ms=1))
    try:
        _, plain = asyncio.run(runtime.predict("plain", texts))
        target, fast = asyncio.run(runtime.predict("fast", texts))
        assert target.optimize == "int8"
        agree = sum(p["label"] == f["label"] for p, f in zip(plain, fast)) / len(texts)
        assert agree >= 0.9
        for p, f in zip(plain, fast):
            assert f["probabilities"] == pytest.approx(p["probabilities"], abs=0.1)
        plain_bytes = runtime.pager.resident("tiny@1")
        slots = {s.key: s.bytes for s in runtime.pager.slots.values()}
        assert slots["model:tiny@1:int8"] < slots["model:tiny@1:"]
        assert plain_bytes is not None
    finally:
        runtime.close()
    home = ["--home", str(ws.home)]
    assert main([*home, "eval", "tiny", "--data", "intents", "--optimize", "int8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["metrics"]
    assert report["optimized"]["optimize"] == "int8"
    assert report["optimized"]["accuracy_change"] == pytest.approx(
        report["accuracy"] - report["optimized"]["baseline_accuracy"], abs=1e-4
    )
    assert abs(report["optimized"]["accuracy_change"]) <= 0.1
    assert main([*home, "eval", "tiny", "--data", "intents", "--optimize", "int8"]) == 0
    assert "int8: accuracy change" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["full", "lora"])
def test_onnx_deployment_equals_torch(ws, intents_csv, tiny_model_dir, capsys, method):
    """ONNX Runtime runs the same fp32 arithmetic: every probability equals torch's, for
    rows of mixed lengths in padded batches, and a LoRA model (merged before export) too."""
    pytest.importorskip("onnxruntime")
    ws.import_dataset(intents_csv, "intents")
    ws.train(tiny_spec(tiny_model_dir, method=method, train={"epochs": 2, "batch_size": 16, "seed": 3}))
    ws.deploy("tiny", "plain")
    ws.deploy("tiny", "fast", optimize="onnx")
    texts = [*make_rows(40, seed=9)["text"].tolist(), "alone", "x " * 40]
    runtime = ServeRuntime(ws.store, ServeConfig(max_wait_ms=1))
    try:
        _, plain = asyncio.run(runtime.predict("plain", texts))
        target, fast = asyncio.run(runtime.predict("fast", texts))
        assert target.optimize == "onnx" and not target.adapter
        for p, f in zip(plain, fast):
            assert f["label"] == p["label"]
            assert f["probabilities"] == pytest.approx(p["probabilities"], abs=1e-5)
        slot = next(s for s in runtime.pager.slots.values() if s.key == "model:tiny@1:onnx")
        assert slot.bytes > 0  # the exported graph's size, reported like any model's
    finally:
        runtime.close()
    home = ["--home", str(ws.home)]
    assert main([*home, "eval", "tiny", "--data", "intents", "--optimize", "onnx", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["metrics"]
    assert report["optimized"]["optimize"] == "onnx"
    assert report["optimized"]["accuracy_change"] == 0


def test_unknown_optimize_is_one_line(ws, intents_csv, tiny_model_dir, capsys):
    ws.import_dataset(intents_csv, "intents")
    ws.train(tiny_spec(tiny_model_dir, train={"epochs": 1, "batch_size": 16, "seed": 3}))
    home = ["--home", str(ws.home)]
    assert main([*home, "deploy", "tiny", "--name", "x", "--optimize", "tensorrt"]) == 2
    assert "unknown --optimize 'tensorrt': use int8, onnx" in capsys.readouterr().err
    assert main([*home, "eval", "tiny", "--data", "intents", "--optimize", "tensorrt"]) == 2
    assert "only int8 or onnx" in capsys.readouterr().err
