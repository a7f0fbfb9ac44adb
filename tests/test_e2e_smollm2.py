"""The real SmolLM2-135M-Instruct from the zoo: it answers through its own chat template,
the batched generator agrees with transformers, and it classifies zero-shot through the
ordinary predict path. Marked slow; part of `make test`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory):
    from llmos import Workspace

    workspace = Workspace(tmp_path_factory.mktemp("smol") / "ws")
    workspace.init()
    return workspace


def test_smollm2_answers_and_batches_like_transformers(ws):
    llm = ws.llm("smollm2-135m")
    assert llm.format.turn_end == "<|im_end|>"
    questions = ["What is the capital of France?", "Name a primary colour."]
    from llmos.models.generation import SamplingParams

    answers = ws.generate("smollm2-135m", questions, SamplingParams(max_new_tokens=40))
    assert "Paris" in answers[0].text and answers[0].finish_reason == "stop"
    prompt = llm.format.prompt_ids([{"role": "user", "content": questions[1]}])
    with torch.inference_mode():
        ref = llm.lm.generate(torch.tensor([prompt]), max_new_tokens=40, do_sample=False)
    expected = llm.tokenizer.decode(ref[0, len(prompt) :], skip_special_tokens=True)
    assert answers[1].text == expected


def test_smollm2_zero_shot_sentiment(ws, tmp_path: Path):
    rows = [
        ("A wonderful, moving film with superb acting.", "pos"),
        ("I loved every minute of it, a true delight.", "pos"),
        ("A brilliant and beautiful story.", "pos"),
        ("Dull, boring and far too long.", "neg"),
        ("The worst movie I have seen this year.", "neg"),
        ("A tedious, badly acted mess.", "neg"),
    ]
    pd.DataFrame(rows * 2, columns=["text", "label"]).to_csv(tmp_path / "s.csv", index=False)
    ws.import_dataset(tmp_path / "s.csv", name="sent")
    outcome = ws.train(
        {
            "name": "smol-zero",
            "model": "smollm2-135m",
            "method": {"type": "zero-shot", "labels": {"pos": "positive", "neg": "negative"}},
            "data": {"train": "sent", "split": {"test": 0.5, "seed": 0}},
            "inputs": [{"name": "text"}],
            "outputs": [{"name": "label"}],
        }
    )
    assert outcome.metrics["accuracy"] >= 5 / 6
    (row,) = ws.predict("smol-zero", ["An awful, boring film."])
    assert row["label"] == "neg"
