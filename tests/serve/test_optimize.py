"""How a text classifier is served: by default a whole one runs with ONNX Runtime on the
CPU (the same outputs as torch, its graph exported once per version, torch when the export
fails); `--optimize int8` serves a quantised one from less memory with almost the same
outputs, and `llmos eval --optimize int8` reports the accuracy change; `--optimize torch`
opts out."""

from __future__ import annotations

import asyncio
import json

import pytest

from llmos.cli.main import main
from llmos.serve.runtime import ServeConfig, ServeRuntime
from tests.conftest import make_rows, tiny_spec


def optimized_eval(ws, capsys, optimize: str) -> dict:
    """The metrics of `llmos eval tiny --optimize OPTIMIZE --json`."""
    command = ["--home", str(ws.home), "eval", "tiny", "--data", "intents", "--optimize", optimize, "--json"]
    assert main(command) == 0
    report = json.loads(capsys.readouterr().out)["metrics"]
    assert report["optimized"]["optimize"] == optimize
    return report


def test_int8_deployment_and_eval(ws, intents_csv, tiny_model_dir, capsys):
    ws.import_dataset(intents_csv, "intents")
    ws.train(
        tiny_spec(
            tiny_model_dir, train={"epochs": 6, "batch_size": 16, "lr": 3e-3, "head_lr": 1e-2, "seed": 7}
        )
    )
    ws.deploy("tiny", "plain", optimize="torch")
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
    report = optimized_eval(ws, capsys, "int8")
    assert report["optimized"]["accuracy_change"] == pytest.approx(
        report["accuracy"] - report["optimized"]["baseline_accuracy"], abs=1e-4
    )
    assert abs(report["optimized"]["accuracy_change"]) <= 0.1
    assert main(["--home", str(ws.home), "eval", "tiny", "--data", "intents", "--optimize", "int8"]) == 0
    assert "int8: accuracy change" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["full", "lora"])
def test_onnx_deployment_equals_torch(ws, intents_csv, tiny_model_dir, capsys, method):
    """ONNX Runtime runs the same fp32 arithmetic: every probability equals torch's, for
    rows of mixed lengths in padded batches, and a LoRA model (merged before export) too.
    With no --optimize, a whole model runs with ONNX Runtime (its graph cached beside the
    version's files and read back by the next load); an adapter keeps sharing its base."""
    pytest.importorskip("onnxruntime")
    from llmos.models.onnx import OnnxClassifier, graph_path
    from llmos.store.models import get_model, model_folder

    ws.import_dataset(intents_csv, "intents")
    ws.train(tiny_spec(tiny_model_dir, method=method, train={"epochs": 2, "batch_size": 16, "seed": 3}))
    ws.deploy("tiny", "plain", optimize="torch")
    ws.deploy("tiny", "fast", optimize="onnx")
    ws.deploy("tiny", "default")
    texts = [*make_rows(40, seed=9)["text"].tolist(), "alone", "x " * 40]
    runtime = ServeRuntime(ws.store, ServeConfig(max_wait_ms=1))
    try:
        target, plain = asyncio.run(runtime.predict("plain", texts))
        assert target.optimize is None
        target, fast = asyncio.run(runtime.predict("fast", texts))
        assert target.optimize == "onnx" and not target.adapter
        default, by_default = asyncio.run(runtime.predict("default", texts))
        for p, f, d in zip(plain, fast, by_default):
            assert f["label"] == p["label"] == d["label"]
            assert f["probabilities"] == pytest.approx(p["probabilities"], abs=1e-5)
            assert d["probabilities"] == pytest.approx(p["probabilities"], abs=1e-5)
        slot = next(s for s in runtime.pager.slots.values() if s.key == "model:tiny@1:onnx")
        assert slot.bytes > 0  # the exported graph's size, reported like any model's
        models = [m for s in runtime.pager.slots.values() for m in s.whole.values()]
        onnx_models = sum(isinstance(m.model, OnnxClassifier) for m in models)
        if method == "full":
            assert default.optimize == "auto" and not default.adapter
            assert onnx_models == 2  # the default deployment's model too
        else:
            assert default.optimize is None and default.adapter
            assert onnx_models == 1
    finally:
        runtime.close()
    graph = graph_path(model_folder(ws.store, get_model(ws.store, "tiny@1")))
    assert graph.is_file() == (method == "full")
    if method == "full":  # the next server reads the cached graph: an export would replace the file
        stamp = graph.stat().st_mtime_ns
        again = ServeRuntime(ws.store, ServeConfig(max_wait_ms=1))
        try:
            _, rows = asyncio.run(again.predict("default", texts))
            assert [r["label"] for r in rows] == [d["label"] for d in by_default]
        finally:
            again.close()
        assert graph.stat().st_mtime_ns == stamp
    assert optimized_eval(ws, capsys, "onnx")["optimized"]["accuracy_change"] == 0


def test_onnx_int8_deployment_is_quantised_and_agrees(ws, intents_csv, tiny_model_dir):
    """`--optimize onnx-int8`: ONNX Runtime on int8 MatMul weights. The graph is smaller
    than the fp32 one, and its answers stay near the full-precision model's."""
    pytest.importorskip("onnxruntime")
    ws.import_dataset(intents_csv, "intents")
    ws.train(tiny_spec(tiny_model_dir, train={"epochs": 2, "batch_size": 16, "seed": 3}))
    ws.deploy("tiny", "plain")
    ws.deploy("tiny", "fast", optimize="onnx")
    ws.deploy("tiny", "small", optimize="onnx-int8")
    texts = make_rows(40, seed=9)["text"].tolist()
    runtime = ServeRuntime(ws.store, ServeConfig(max_wait_ms=1))
    try:
        _, plain = asyncio.run(runtime.predict("plain", texts))
        asyncio.run(runtime.predict("fast", texts))
        target, small = asyncio.run(runtime.predict("small", texts))
        assert target.optimize == "onnx-int8"
        agree = sum(s["label"] == p["label"] for s, p in zip(small, plain))
        assert agree >= 0.9 * len(texts)
        for p, s in zip(plain, small):
            assert s["probabilities"] == pytest.approx(p["probabilities"], abs=0.1)
        sizes = {s.key: s.bytes for s in runtime.pager.slots.values()}
        assert 0 < sizes["model:tiny@1:onnx-int8"] < sizes["model:tiny@1:onnx"]
    finally:
        runtime.close()


def test_unknown_optimize_is_one_line(ws, intents_csv, tiny_model_dir, capsys):
    ws.import_dataset(intents_csv, "intents")
    ws.train(tiny_spec(tiny_model_dir, train={"epochs": 1, "batch_size": 16, "seed": 3}))
    home = ["--home", str(ws.home)]
    assert main([*home, "deploy", "tiny", "--name", "x", "--optimize", "tensorrt"]) == 2
    assert "unknown --optimize 'tensorrt': use int8, onnx, onnx-int8, torch" in capsys.readouterr().err
    assert main([*home, "eval", "tiny", "--data", "intents", "--optimize", "tensorrt"]) == 2
    assert "only int8 or onnx" in capsys.readouterr().err


def test_without_onnxruntime_only_the_onnx_deployment_fails(
    ws, intents_csv, tiny_model_dir, capsys, monkeypatch, caplog
):
    """A missing ONNX Runtime is a 503 naming the fix for a deployment that asked for
    --optimize onnx alone; the same version deployed without --optimize serves with torch
    and says so in one log line; the CLI prints the fix verbatim."""
    import logging

    import llmos.models.onnx
    from llmos.core.errors import UsageError
    from llmos.serve.errors import ModelUnavailable

    def missing() -> None:
        raise UsageError("--optimize onnx needs onnxruntime and onnx: pip install 'llmos[onnx]'")

    monkeypatch.setattr(llmos.models.onnx, "_runtime", missing)
    ws.import_dataset(intents_csv, "intents")
    ws.train(tiny_spec(tiny_model_dir, train={"epochs": 1, "batch_size": 16, "seed": 3}))
    ws.deploy("tiny", "fast", optimize="onnx")
    ws.deploy("tiny", "plain")
    runtime = ServeRuntime(ws.store, ServeConfig(max_wait_ms=1))
    try:
        with pytest.raises(
            ModelUnavailable, match=r"tiny@1 \(--optimize onnx\) failed to load: .*llmos\[onnx\]"
        ):
            asyncio.run(runtime.predict("fast", ["card"]))
        with caplog.at_level(logging.WARNING, logger="llmos.serve"):
            _, rows = asyncio.run(runtime.predict("plain", ["card"]))
            _, again = asyncio.run(runtime.predict("plain", ["card"]))
        assert rows[0]["label"] and again[0]["probabilities"] == rows[0]["probabilities"]
        lines = [r.getMessage() for r in caplog.records if "serving with torch" in r.getMessage()]
        assert lines == [
            "model tiny@1: serving with torch, ONNX Runtime unavailable: --optimize onnx needs"
            " onnxruntime and onnx: pip install 'llmos[onnx]'"
        ]
    finally:
        runtime.close()
    assert main(["--home", str(ws.home), "eval", "tiny", "--data", "intents", "--optimize", "onnx"]) == 2
    assert "pip install 'llmos[onnx]'" in capsys.readouterr().err
