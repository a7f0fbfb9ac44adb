"""The `rerank` task (a cross-encoder over a `text-pair` input) and text-pair
classification, on the tiny model: trained with the one loop, registered, reloaded,
scored as a ranking (MAP, MRR)."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from llmos import Workspace
from llmos.core.errors import DataError, SpecError
from llmos.train.workflows.rerank import ranking_metrics
from tests.conftest import FILLER, TOPICS

FAST = {"batch_size": 16, "lr": 1e-2, "head_lr": 1e-2, "seed": 3, "warmup": 0.0}


def pairs(queries: int, seed: int) -> pd.DataFrame:
    """Each query: one passage on its topic (relevant) and two on other topics."""
    rng = random.Random(seed)
    topics = list(TOPICS)
    rows = []
    for i in range(queries):
        topic = topics[i % len(topics)]
        query = " ".join(rng.sample(TOPICS[topic], 2) + rng.sample(FILLER, 2))
        for other in topics:
            passage = " ".join(rng.sample(TOPICS[other], 3) + rng.sample(FILLER, 3))
            rows.append({"question": query + f" {i}", "passage": passage, "relevant": int(other == topic)})
    return pd.DataFrame(rows)


def rerank_spec(tiny_model_dir, **extra):
    return {
        "name": "rr",
        "task": "rerank",
        "model": str(tiny_model_dir),
        "method": "full",
        "data": {"train": "pairs", "test": "pairs-test"},
        "inputs": [{"name": "question", "pair": "passage", "max_length": 48}],
        "outputs": [{"name": "relevant"}],
        "train": {**FAST, "epochs": 10},
        **extra,
    }


@pytest.fixture
def pair_data(ws, tmp_path):
    for name, frame in (("pairs", pairs(150, 1)), ("pairs-test", pairs(15, 2))):
        path = tmp_path / f"{name}.csv"
        frame.to_csv(path, index=False)
        ws.import_dataset(path, name)
    return ws


def test_reranker_trains_ranks_and_reloads_as_a_model_version(pair_data, tiny_model_dir):
    ws = pair_data
    trained = ws.train(rerank_spec(tiny_model_dir))
    m = trained.metrics
    assert trained.model.task == "rerank"
    assert m["ranked_queries"] == 15
    assert m["map"] >= 0.8 and m["mrr"] >= 0.8, m  # random order gives about 0.61
    fresh = Workspace(ws.home)
    rows = fresh.predict(
        "rr",
        [
            {"question": "my card arrived in the post", "passage": "card delivery mail please"},
            {"question": "my card arrived in the post", "passage": "refund money back merchant"},
        ],
    )
    on_topic, off_topic = (r["probabilities"]["1"] for r in rows)
    assert on_topic > off_topic
    deployed = fresh.deploy("rr", "rr-live")
    assert deployed.kind == "classifier"


def test_text_pair_classification_is_an_ordinary_text_classification_input(pair_data, tiny_model_dir):
    spec = rerank_spec(tiny_model_dir, name="para")
    del spec["task"]
    spec["inputs"][0]["type"] = "text-pair"
    spec["train"]["epochs"] = 1
    trained = pair_data.train(spec)
    assert trained.model.task == "text-classification"
    assert "map" not in trained.metrics
    [row] = pair_data.predict("para", [{"question": "card", "passage": "mail"}])
    assert set(row["probabilities"]) == {"0", "1"}


def test_rerank_bad_specs_and_labels_say_what_is_wrong(pair_data, tiny_model_dir, tmp_path):
    ws = pair_data
    spec = rerank_spec(tiny_model_dir)
    spec["inputs"] = [{"type": "text", "name": "question"}]
    with pytest.raises(SpecError, match="rerank reads one `text-pair` input"):
        ws.train(spec)
    spec = rerank_spec(tiny_model_dir)
    del spec["inputs"][0]["pair"]
    with pytest.raises(SpecError, match="pair"):
        ws.train(spec)
    three = pairs(6, 3).assign(relevant=lambda f: [i % 3 for i in range(len(f))])
    three.to_csv(tmp_path / "three.csv", index=False)
    ws.import_dataset(tmp_path / "three.csv", "three")
    spec = rerank_spec(tiny_model_dir, data={"train": "three"})
    with pytest.raises(DataError, match="rerank: label column 'relevant' holds 3 values"):
        ws.train(spec)
    spec = rerank_spec(tiny_model_dir)
    spec["inputs"][0]["pair"] = "nope"
    with pytest.raises(DataError, match="input column 'nope' not found"):
        ws.train(spec)
    assert [m.name for m in ws.models()] == []


def test_ranking_metrics_count_only_queries_with_a_relevant_passage():
    m = ranking_metrics(
        ["a", "a", "a", "b", "b"], [0.9, 0.8, 0.1, 0.5, 0.4], [False, True, True, False, False]
    )
    assert m["ranked_queries"] == 1
    assert m["mrr"] == 0.5
    assert m["map"] == round((1 / 2 + 2 / 3) / 2, 4)
