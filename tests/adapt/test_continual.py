"""Adapt, gate, promote, rollback and label suggest on the tiny random BERT: the lineage
and decisions they record, and every bad input with its one-line message."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from llmos.adapt.continual import AdaptSettings, adapt_model
from llmos.core.errors import DataError, UsageError
from llmos.store.adaptation import last_feedback_used, list_decisions
from llmos.store.models import model_labels
from tests.cli.test_cli import one_line_error
from tests.conftest import make_rows, snapshot, tiny_spec

LABELS = ["card", "refund", "transfer", "loan"]  # "loan" has no training rows yet


def lora_spec(model_dir):
    return tiny_spec(
        model_dir,
        method={"type": "lora", "r": 4, "target_modules": ["query", "value"]},
        outputs=[{"name": "label", "labels": LABELS}],
        train={"epochs": 3, "batch_size": 16, "lr": 3e-3, "head_lr": 1e-2, "seed": 7},
    )


def feedback(n: int = 40, seed: int = 3, extra: dict[str, str] | None = None) -> pd.DataFrame:
    frame = make_rows(n, seed)
    for text, label in (extra or {}).items():
        frame = pd.concat([frame, pd.DataFrame([{"text": text, "label": label}] * 4)], ignore_index=True)
    frame.insert(0, "feedback_id", range(1, len(frame) + 1))
    return frame


@pytest.fixture
def deployed(ws, intents_csv, tiny_model_dir):
    ws.import_dataset(intents_csv, "intents")
    ws.train(lora_spec(tiny_model_dir))
    ws.deploy("tiny@1", "d")
    return ws


def test_declared_labels_are_the_label_set_with_a_head_row_each(deployed):
    ws = deployed
    assert model_labels(ws.store, ws.model("tiny@1")) == LABELS
    assert ws.predictor("tiny@1").model.head.out_features == 4


def test_adapt_registers_a_candidate_with_lineage_and_records_the_decision(deployed):
    ws = deployed
    rows = feedback()
    outcome = adapt_model(ws.store, "d", rows, AdaptSettings(epochs=1, ewc=10.0, lwf=1.0, tolerance=100.0))
    assert outcome.parent == "tiny@1" and outcome.candidate == "tiny@2"
    lineage = ws.model("tiny@2").split["adapt"]
    assert lineage["parent"] == "tiny@1" and lineage["feedback_ids"] == list(range(1, 41))
    assert lineage["replay_rows"] == pytest.approx(2 * (len(rows) - lineage["held_out_rows"]), abs=3)
    assert set(lineage["held_out_feedback_ids"]) < set(lineage["feedback_ids"])
    assert ws.model("tiny@2").split["index_digest"] == ws.model("tiny@1").split["index_digest"]
    [decision] = list_decisions(ws.store, "d")
    assert decision.decision == outcome.decision and decision.candidate == "tiny@2"
    assert decision.metrics["parent"]["original_accuracy"] == outcome.metrics["parent"]["original_accuracy"]
    served = ws.deployment("d").model
    assert served == ("tiny@2" if outcome.decision == "promote" else "tiny@1")
    assert last_feedback_used(ws.store, "d") == 40

    # a candidate that must gain 100 points on the original task is rejected; nothing re-points
    again = adapt_model(ws.store, "d", feedback(seed=4), AdaptSettings(epochs=1, tolerance=-100.0))
    assert again.decision == "reject" and "dropped more than -100 points" in again.reasons[1]
    assert ws.deployment("d").model == served and ws.model("tiny@3").split["adapt"]["parent"] == served


def test_labels_outside_the_label_set_need_new_labels(deployed):
    ws = deployed
    rows = feedback(extra={"mortgage please help": "mortgage"})
    before = snapshot(ws.home)
    with pytest.raises(
        DataError, match=r"labels outside model tiny@1's label set: 'mortgage'; .* --new-labels"
    ):
        adapt_model(ws.store, "d", rows, AdaptSettings(epochs=1))
    assert snapshot(ws.home)["tables"] == before["tables"]
    outcome = adapt_model(ws.store, "d", rows, AdaptSettings(epochs=1, new_labels=True, tolerance=100.0))
    assert model_labels(ws.store, ws.model(outcome.candidate)) == [*LABELS, "mortgage"]
    assert ws.model(outcome.candidate).spec["outputs"][0]["labels"][-1] == "mortgage"
    assert set(ws.predict(outcome.candidate, ["my card"])[0]["probabilities"]) == {*LABELS, "mortgage"}


def test_adapt_bad_input(deployed):
    ws = deployed
    with pytest.raises(UsageError, match="no new feedback for deployment 'd'"):
        adapt_model(ws.store, "d", feedback().iloc[:0], AdaptSettings())
    with pytest.raises(DataError, match="column 'text' not found"):
        adapt_model(ws.store, "d", feedback().drop(columns=["text"]), AdaptSettings())
    with pytest.raises(UsageError, match="leave none held out"):
        adapt_model(ws.store, "d", feedback(3), AdaptSettings())


def test_cli_adapt_as_a_job_history_and_rollback(deployed, run, tmp_path):
    ws = deployed
    feedback().drop(columns=["feedback_id"]).to_csv(tmp_path / "fb.csv", index=False)
    ws.import_dataset(tmp_path / "fb.csv", "fb")
    code, out, err = run("adapt", "d", "--data", "fb", "--dry-run", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert (
        plan["model"] == "tiny@1" and plan["train"] + plan["held_out"] == 40 and not ws.jobs(state="queued")
    )
    code, out, err = run("adapt", "d", "--data", "fb", "--epochs", "1", "--tolerance", "100", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["candidate"] == "tiny@2" and result["decision"] in ("promote", "reject")
    assert ws.job(result["job"]).kind == "adapt"

    ws.deploy("tiny@2", "d")  # re-point by hand (also recorded), then roll it back
    code, out, err = run("rollback", "d", "--reason", "bad answers", "--json")
    assert code == 0, err
    rolled = json.loads(out)
    assert rolled["decision"] == "rollback" and rolled["model"] == ws.deployment("d").model
    code, out, _ = run("adapt", "d", "--history", "--json")
    history = json.loads(out)
    assert [h["decision"] for h in history][-1] == "rollback" and history[-1]["reasons"] == ["bad answers"]
    assert history[0]["decision"] == result["decision"] and history[0]["job"] == result["job"]

    ws.deploy("tiny@1", "fresh")
    code, _, err = run("rollback", "fresh")
    assert code != 0 and "deployment 'fresh' has no earlier model to return to" in one_line_error(err)
    code, _, err = run("rollback", "nope")
    assert code != 0 and "deployment 'nope' not found" in one_line_error(err)


def test_adapt_reads_only_feedback_newer_than_the_last_adapt(deployed, run):
    from llmos.adapt.jobs import new_feedback
    from llmos.store.feedback import FeedbackEntry, add_feedback

    ws = deployed
    jobs_before = len(ws.jobs())
    code, _, err = run("adapt", "d")
    assert code != 0 and "no new feedback for deployment 'd'" in one_line_error(err)
    assert len(ws.jobs()) == jobs_before  # no job started

    rows = make_rows(30, seed=11)
    ids = add_feedback(
        ws.store,
        [
            FeedbackEntry(deployment="d", inputs={"text": t}, label=lab, source="import")
            for t, lab in zip(rows.text, rows.label)
        ],
    )
    fresh = new_feedback(ws.store, "d")
    assert fresh["feedback_id"].tolist() == ids and fresh["label"].tolist() == rows["label"].tolist()
    adapt_model(ws.store, "d", fresh, AdaptSettings(epochs=1, tolerance=100.0))
    assert new_feedback(ws.store, "d").empty
    code, _, err = run("adapt", "d", "--json")
    assert code != 0 and "no new feedback for deployment 'd'" in one_line_error(err)
    assert len(ws.jobs()) == jobs_before
    # nothing served yet: no drift, no job
    code, out, err = run("adapt", "d", "--data", "intents", "--on-drift", "--json")
    assert code == 0, err
    assert json.loads(out) == {
        "deployment": "d",
        "drifted": False,
        "started": None,
        "reason": "no full window yet",
    }
    assert len(ws.jobs()) == jobs_before
    code, _, err = run("adapt", "nope", "--data", "intents")
    assert code != 0 and "deployment 'nope' not found" in one_line_error(err)


def test_label_suggest_exports_uncertain_rows_for_labelling(deployed, run, tmp_path):
    ws = deployed
    pool = make_rows(60, seed=9).drop(columns=["label"])  # unlabelled rows
    pool.to_csv(tmp_path / "pool.csv", index=False)
    ws.import_dataset(tmp_path / "pool.csv", "pool")
    out_file = tmp_path / "to-label.csv"
    code, out, err = run(
        "label", "suggest", "pool", "--model", "tiny", "--k", "5", "--out", str(out_file), "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["candidates"] == 60 and len(result["rows"]) == 5
    scores = [r["uncertainty"] for r in result["rows"]]
    assert scores == sorted(scores, reverse=True)
    written = pd.read_csv(out_file)
    assert len(written) == 5 and written["label"].isna().all()
    assert set(written["text"]) == {r["text"] for r in result["rows"]}
    code, _, err = run(
        "label", "suggest", "pool", "--model", "tiny", "--k", "5", "--out", str(tmp_path / "x.txt")
    )
    assert code != 0 and "use a .csv or .jsonl file" in one_line_error(err)


def test_sdk_adapt_history_rollback_and_label_suggestions(deployed, tmp_path):
    ws = deployed
    with pytest.raises(UsageError, match="no new feedback for deployment 'd'"):
        ws.submit_adapt("d", start_kernel=False)
    with pytest.raises(UsageError, match=r"adapt settings: .*'epoch'"):
        ws.submit_adapt("d", epoch=1)
    assert not ws.jobs()
    feedback().drop(columns=["feedback_id"]).to_csv(tmp_path / "fb.csv", index=False)
    ws.import_dataset(tmp_path / "fb.csv", "fb")
    result = ws.adapt("d", data="fb", epochs=1, tolerance=100)
    assert result["candidate"] == "tiny@2" and result["decision"] in ("promote", "reject")
    ws.deploy("tiny@2", "d")
    rolled = ws.rollback("d", reason="complaints")
    assert (rolled["decision"], rolled["model"], rolled["parent"]) == ("rollback", "tiny@1", "tiny@2")
    assert ws.deployment("d").model == "tiny@1"
    history = ws.adapt_history("d")
    assert [h["decision"] for h in history] == [result["decision"], "rollback"]
    assert history[0]["job"] == result["job"] and history[1]["reasons"] == ["complaints"]
    make_rows(20, seed=5)[["text"]].to_csv(tmp_path / "pool.csv", index=False)
    ws.import_dataset(tmp_path / "pool.csv", "pool")
    suggested = ws.suggest_labels("pool", "tiny@1", 5, out=tmp_path / "to-label.csv")
    assert len(pd.read_csv(tmp_path / "to-label.csv")) == 5, suggested
