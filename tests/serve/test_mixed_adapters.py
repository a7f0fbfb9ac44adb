"""Requests for many LoRA adapters over one base run in shared forward passes, and each
answer equals that adapter's offline prediction, with two batch workers running such
passes at once; IA3 adapters keep one pass each."""

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


def _offline(ws, ref: str) -> list[dict]:
    return Predictor.from_folder(ws.model_path(ref), ws.settings.artifacts_dir).predict(TEXTS)


def _same(served: list[dict], offline: list[dict]) -> None:
    assert [r["label"] for r in served] == [r["label"] for r in offline]
    for s, o in zip(served, offline):
        assert s["probabilities"] == pytest.approx(o["probabilities"], abs=1e-5)


def test_lora_adapters_share_forward_passes(lora_ws, tiny_model_dir):
    ws = lora_ws
    refs = fleet(ws, 5)
    names = {f"a{i}": ref for i, ref in enumerate(refs)}
    for name, seed in (("ia3", 7), ("ia3b", 8)):  # a method without mixed batches
        train = {"epochs": 1, "batch_size": 16, "seed": seed}
        ws.train(tiny_spec(tiny_model_dir, name=name, method={"type": "ia3"}, train=train))
        ws.deploy(f"{name}@1", name)
        names[name] = f"{name}@1"
    offline = {name: _offline(ws, ref) for name, ref in names.items()}
    assert len({tuple(r["label"] for r in rows) for rows in offline.values()}) > 1  # they differ

    # three adapters in memory at most: a batch of five still keeps its own adapters loaded
    # two batch workers run mixed passes at once, each routing its own rows
    runtime = ServeRuntime(ws.store, ServeConfig(max_adapters=3, max_wait_ms=1, workers=2))
    runtime.pager.batch_size = 64
    try:
        targets = {name: runtime.resolve(name)[1] for name in names}
        lora = [n for n in names if n.startswith("a")]
        ia3 = ["ia3", "ia3b"]
        calls: dict[str, list[int]] = {"lora": [], "ia3": []}
        for kind, group in (("lora", lora), ("ia3", ia3)):
            assert len({targets[n].base_key for n in group}) == 1  # one shared base each
            runtime.pager.predictor(targets[group[0]])  # loads the base
            slot = runtime.pager.slot(targets[group[0]])
            hook = slot.encoder.register_forward_hook(lambda *_, k=kind: calls[k].append(1))
            answers = runtime.pager.predict_adapters([(targets[n], TEXTS) for n in group])
            hook.remove()
            for name, served in zip(group, answers):
                assert not isinstance(served, Exception), served
                _same(served, offline[name])
        # 15 LoRA rows in one pass (five passes one adapter at a time); IA3 one per adapter
        assert len(calls["lora"]) == 1
        assert len(calls["ia3"]) == 2

        # through the server: concurrent requests to every deployment are batched together,
        # adapters paged in and out between the passes (three fit)
        groups: list[int] = []
        runtime.observers.append(lambda _inputs, n: groups.append(n))
        runtime.batcher.max_wait = 0.2

        async def ask_all():
            calls = [(n, t) for n in names for t in TEXTS]
            got = await asyncio.gather(*(runtime.predict(n, [t]) for n, t in calls))
            return [(n, TEXTS.index(t), rows[0]) for (n, t), (_, rows) in zip(calls, got)]

        for name, i, row in asyncio.run(ask_all()):
            assert row["label"] == offline[name][i]["label"], (name, i)
            assert row["probabilities"] == pytest.approx(offline[name][i]["probabilities"], abs=1e-5)
        assert max(groups) > 2
    finally:
        runtime.close()
