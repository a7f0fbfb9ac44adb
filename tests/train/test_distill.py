"""`distill:`: a student learns a zero-shot LLM teacher's label probabilities on unlabelled
rows (the teacher asked once per text, its answers cached), self-trains for more rounds,
and a teacher with other labels than the spec's is refused in one line before any work."""

from __future__ import annotations

import pytest

from llmos.core.errors import DataError, SpecError
from tests.conftest import make_rows, snapshot, tiny_spec

WORDS = {"card": "card", "transfer": "transfer", "refund": "refund"}


@pytest.fixture
def data(ws, tmp_path):
    make_rows(24, seed=1).to_csv(tmp_path / "few.csv", index=False)  # 8 labels per intent
    make_rows(96, seed=2)[["text"]].to_csv(tmp_path / "unlabelled.csv", index=False)
    ws.import_dataset(tmp_path / "few.csv", "intents")
    ws.import_dataset(tmp_path / "unlabelled.csv", "pool")
    return ws


def teacher_spec(lm_dir, name="teacher", labels=WORDS):
    return {
        "name": name,
        "model": str(lm_dir),
        "method": {"type": "zero-shot", "labels": labels},
        "data": {"train": "intents", "split": {"test": 0.25, "seed": 1}},
        "inputs": [{"name": "text", "max_length": 32}],
        "outputs": [{"name": "label"}],
    }


def student_spec(model_dir, **distill):
    return tiny_spec(
        model_dir,
        name="student",
        train={"epochs": 5, "batch_size": 16, "lr": 3e-3, "head_lr": 1e-2, "seed": 7},
        distill={"teacher": "teacher", "unlabelled": "pool", **distill},
    )


def test_student_learns_a_fine_tuned_teacher_from_unlabelled_rows(data, tiny_model_dir, tmp_path):
    ws = data
    make_rows(90, seed=4).to_csv(tmp_path / "all.csv", index=False)
    ws.import_dataset(tmp_path / "all.csv", "all")
    ws.train(tiny_spec(tiny_model_dir, name="teacher", data={"train": "all", "test": "intents"}))
    out = ws.train(student_spec(tiny_model_dir, temperature=0.5))
    d = out.metrics["distill"]
    assert d["teacher"] == "teacher@1" and d["unlabelled_rows"] == 96 and d["labelled_rows"] == 19
    assert d["teacher_cached_rows"] == 0 and d["teacher_seconds"] > 0
    # the student answers like the teacher on the unlabelled rows it learnt from
    assert d["rounds"][0]["teacher_agreement"] >= 0.85, d
    [row] = ws.predict("student", ["refund my money back"])
    assert row["label"] in WORDS


def test_llm_teacher_is_asked_once_and_self_training_adds_rounds(data, tiny_lm_dir, tiny_model_dir):
    ws = data
    ws.train(teacher_spec(tiny_lm_dir))
    quick = {"epochs": 1, "batch_size": 32, "lr": 3e-3, "head_lr": 1e-2, "seed": 7}
    first = ws.train({**student_spec(tiny_model_dir), "train": quick}).metrics["distill"]
    assert first["teacher_cached_rows"] == 0 and first["teacher_seconds"] > 0
    # a second student (self-training) reads the teacher's answers from the cache
    again = ws.train({**student_spec(tiny_model_dir, rounds=1, confidence=0.34), "train": quick})
    d = again.metrics["distill"]
    assert d["teacher_cached_rows"] == 96 and d["teacher_seconds"] == 0
    assert [r["round"] for r in d["rounds"]] == [0, 1] and d["rounds"][0]["pseudo_labelled"] > 0
    assert again.model.ref == "student@2"


def test_teacher_with_other_labels_is_refused_in_one_line(data, tiny_lm_dir, tiny_model_dir, tmp_path):
    ws = data
    two = make_rows(30, seed=3)
    two = two[two["label"] != "refund"]
    two.to_csv(tmp_path / "two.csv", index=False)
    ws.import_dataset(tmp_path / "two.csv", "two")
    spec = teacher_spec(tiny_lm_dir, labels={"card": "card", "transfer": "transfer"})
    spec["data"] = {"train": "two", "split": {"test": 0.25, "seed": 1}}
    ws.train(spec)
    before = snapshot(ws.home)
    with pytest.raises(DataError) as err:
        ws.train(student_spec(tiny_model_dir))
    message = str(err.value)
    assert "\n" not in message
    assert "distill.teacher 'teacher@1'" in message and "lacks 'refund'" in message, message
    assert snapshot(ws.home)["tables"] == before["tables"]

    with pytest.raises(SpecError, match="distill: trains a text-classification student"):
        ws.train({**teacher_spec(tiny_lm_dir), "distill": {"teacher": "teacher", "unlabelled": "pool"}})
