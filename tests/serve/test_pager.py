"""The memory manager: 50 LoRA deployments over one tiny base model share one copy of
it, stay within the adapter budget, answer like offline predict, and reload on demand."""

from __future__ import annotations

import asyncio

import pytest

from llmos.serve.runtime import ServeConfig, ServeRuntime
from llmos.train.predict import Predictor
from tests.conftest import tiny_spec
from tests.serve.conftest import fleet

# about the serving process and the model, not the store: the store queries it makes run on
# both backends in test_http.py and test_feedback.py
pytestmark = pytest.mark.default_backend_only

TEXTS = ["my card has not arrived", "send money to my account", "refund the charge please"]


def test_fifty_adapters_share_one_base_within_budget(lora_ws):
    ws = lora_ws
    refs = fleet(ws, 50)
    runtime = ServeRuntime(ws.store, ServeConfig(max_adapters=8, adapter_budget_mb=1.0, max_wait_ms=1))
    per_adapter = None

    async def ask(name: str):
        _, rows = await runtime.predict(name, TEXTS)
        return rows

    try:
        for i, ref in enumerate(refs):
            served = asyncio.run(ask(f"a{i}"))
            offline = Predictor.from_folder(ws.model_path(ref), ws.settings.artifacts_dir).predict(TEXTS)
            assert [r["label"] for r in served] == [r["label"] for r in offline]
            for s, o in zip(served, offline):
                assert s["probabilities"] == pytest.approx(o["probabilities"], abs=1e-5)
            stats = runtime.pager.stats()
            assert stats["base_models"] == 1 and stats["whole_models"] == 0
            assert stats["adapters"] <= 8
            assert stats["adapter_bytes"] <= stats["adapter_budget_bytes"]
            (slot,) = runtime.pager.slots.values()
            assert len(slot.peft.peft_config) == stats["adapters"]  # evicted adapters left the model
            per_adapter = per_adapter or stats["adapter_bytes"]
        assert runtime.pager.adapter_evictions >= 42
        # the deployments differ: not every adapter gives the same probabilities
        first = asyncio.run(ask("a1"))[0]["probabilities"]
        assert any(asyncio.run(ask(f"a{i}"))[0]["probabilities"] != first for i in range(2, 6))
        # a0 was evicted long ago: it reloads transparently and answers as before
        assert runtime.pager.resident("lora0@1") is None
        loads = runtime.pager.adapter_loads
        again = asyncio.run(ask("a0"))
        assert runtime.pager.adapter_loads == loads + 1
        assert runtime.pager.resident("lora0@1")["as"] == "adapter"
        offline0 = Predictor.from_folder(ws.model_path("lora0@1")).predict(TEXTS)
        assert [r["label"] for r in again] == [r["label"] for r in offline0]
    finally:
        runtime.close()


def test_byte_budget_and_pinning(lora_ws):
    ws = lora_ws
    refs = fleet(ws, 6)
    ws.deploy(refs[0], "a0", pin=True)
    runtime = ServeRuntime(ws.store, ServeConfig(max_adapters=64, max_wait_ms=1))
    try:
        asyncio.run(runtime.predict("a0", TEXTS[:1]))
        one = runtime.pager.stats()["adapter_bytes"]
        # a budget of two adapters and a half: the count limit is far away, bytes decide
        runtime.pager.adapter_budget_bytes = int(2.5 * one)
        for i in range(1, 6):
            asyncio.run(runtime.predict(f"a{i}", TEXTS[:1]))
            stats = runtime.pager.stats()
            assert stats["adapters"] == 2 and stats["adapter_bytes"] <= 2.5 * one
            assert runtime.pager.resident("lora0@1")["pinned"]  # the pinned one stays
    finally:
        runtime.close()


def test_two_batch_workers_answer_like_offline(lora_ws, tiny_model_dir):
    """With `workers=2`, batches of a whole model run at once and adapters take turns on
    their shared base; every answer still equals offline predict."""
    ws = lora_ws
    refs = fleet(ws, 3)
    ws.train(tiny_spec(tiny_model_dir, name="whole", train={"epochs": 1, "batch_size": 16, "seed": 7}))
    ws.deploy("whole@1", "w")
    names = {"w": "whole@1", **{f"a{i}": ref for i, ref in enumerate(refs)}}
    offline = {
        n: [r["label"] for r in Predictor.from_folder(ws.model_path(ref)).predict(TEXTS)]
        for n, ref in names.items()
    }
    runtime = ServeRuntime(ws.store, ServeConfig(max_wait_ms=1, max_batch=4, workers=2))

    async def ask_all():
        calls = [(n, t) for _ in range(10) for n in names for t in TEXTS]
        answers = await asyncio.gather(*(runtime.predict(n, [t]) for n, t in calls))
        return [(n, TEXTS.index(t), rows[0]["label"]) for (n, t), (_, rows) in zip(calls, answers)]

    try:
        for name, i, label in asyncio.run(ask_all()):
            assert label == offline[name][i], (name, i)
        assert {len(lane.threads) for lane in runtime.batcher._lanes.values()} == {2}
    finally:
        runtime.close()
    assert all(not t.is_alive() for lane in runtime.batcher._lanes.values() for t in lane.threads)
