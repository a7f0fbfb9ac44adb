"""`task: pretrain`: continued pre-training on raw text registers a base model version that
a later spec names in `model:` (with lineage); masked-LM for encoders (a head built for
checkpoints without one), causal LM for decoders; bad specs and datasets refused."""

from __future__ import annotations

import pandas as pd
import pytest

from llmos.core.errors import DataError, SpecError
from tests.conftest import make_rows, snapshot, tiny_spec


def pretrain_spec(model, **overrides):
    spec = {
        "name": "base",
        "task": "pretrain",
        "model": str(model),
        "method": "full",
        "data": {"train": "texts", "split": {"test": 0.2, "seed": 0}},
        "inputs": [{"name": "text", "max_length": 16}],
        "train": {"epochs": 4, "batch_size": 16, "lr": 3e-3, "head_lr": 1e-2, "seed": 0},
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def texts(ws, tmp_path):
    # raw text only: no label column
    make_rows(120, seed=5)[["text"]].to_csv(tmp_path / "texts.csv", index=False)
    return ws.import_dataset(tmp_path / "texts.csv", "texts").dataset.ref


def test_mlm_then_fine_tune_on_the_registered_base(ws, texts, intents_csv, tiny_model_dir):
    # the tiny BERT is saved as a bare BertModel: the masked-LM head is built for it
    out = ws.train(pretrain_spec(tiny_model_dir))
    m = out.metrics
    assert out.model.ref == "base@1" and out.model.task == "pretrain"
    assert m["objective"] == "mlm" and "initialised from scratch" in m["head"]
    assert "cls.predictions.transform.dense.weight" in m["head"]
    assert m["loss"] < m["before"]["loss"], m  # held-out masked tokens got easier

    ws.import_dataset(intents_csv, "intents")
    tuned = ws.train(tiny_spec("base@1", method="lora"))
    assert tuned.model.base_model == "base@1"  # lineage
    assert tuned.metrics["accuracy"] > 0.5
    [row] = ws.predict("tiny", ["refund my money back"])
    assert row["label"] in ("card", "transfer", "refund")
    # a further round of pre-training starts from the registered version
    again = ws.train(pretrain_spec("base@1", train={"epochs": 1, "batch_size": 16}))
    assert again.model.ref == "base@2" and again.model.base_model == "base@1"
    assert "own masked-LM head" in again.metrics["head"]


def test_causal_lm_lora_lowers_held_out_perplexity(ws, tmp_path, tiny_lm_dir):
    words = [
        "hello",
        "how",
        "are",
        "you",
        "fine",
        "thanks",
        "what",
        "is",
        "my",
        "balance",
        "card",
        "your",
        "the",
        "app",
    ]
    rows = [" ".join(words[i % 7 : i % 7 + 6]) for i in range(80)]
    pd.DataFrame({"body": rows}).to_csv(tmp_path / "t.csv", index=False)
    ws.import_dataset(tmp_path / "t.csv", "texts")
    spec = pretrain_spec(
        tiny_lm_dir,
        method="lora",
        inputs=[{"name": "body", "max_length": 12}],
        train={"epochs": 3, "lr": 1e-2},
    )
    out = ws.train(spec)
    m = out.metrics
    assert m["objective"] == "causal" and m["perplexity"] < 0.8 * m["before"]["perplexity"], m
    assert ws.models()[0].ref == "base@1"


def test_bad_input_is_one_line_and_stores_nothing(ws, tmp_path, tiny_model_dir, home):
    pd.DataFrame({"label": ["a", "b"] * 10, "score": range(20)}).to_csv(tmp_path / "l.csv", index=False)
    ws.import_dataset(tmp_path / "l.csv", "texts")
    before = snapshot(home)
    with pytest.raises(
        DataError, match=r"^dataset texts@1: input column 'text' not found; columns are label, score$"
    ):
        ws.train(pretrain_spec(tiny_model_dir))
    with pytest.raises(SpecError, match="task pretrain learns from raw text alone: leave `outputs` out"):
        ws.train(pretrain_spec(tiny_model_dir, outputs=[{"name": "label"}]))
    with pytest.raises(SpecError, match="method 'prompt': task pretrain trains with full, lora or ia3"):
        ws.train(pretrain_spec(tiny_model_dir, method="prompt"))
    assert snapshot(home) == before
