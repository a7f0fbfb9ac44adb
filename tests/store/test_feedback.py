"""The feedback store: served requests logged in batches, feedback committed durably, and
`labelled_feedback` (what continual training reads) joining the two."""

from __future__ import annotations

import sqlite3

import pytest

from llmos.core.settings import Settings
from llmos.store import Store
from llmos.store.deployments import save_deployment
from llmos.store.feedback import (
    FeedbackEntry,
    RequestRecord,
    add_feedback,
    find_requests,
    labelled_feedback,
    list_feedback,
    record_requests,
    served_requests,
)


def _log(store: Store) -> None:
    record_requests(
        store,
        [
            RequestRecord("r1", 0, "bank", "m@1", {"text": "card lost"}, {"label": "card"}, "card", 0.9),
            RequestRecord("r1", 1, "bank", "m@1", {"text": "refund me"}, {"label": "card"}, "card", 0.6),
            RequestRecord("r2", 0, "other", "o@2", {"text": "hello"}, {"label": "x"}, "x", 0.5),
        ],
    )


def test_labelled_feedback_joins_the_served_input_and_keeps_the_latest_correction(home):
    store = Store(Settings.resolve(home))
    save_deployment(store, "bank", "m@1", "classifier", {})
    _log(store)
    first, second = find_requests(store, "r1")
    ids = add_feedback(
        store,
        [
            FeedbackEntry("bank", served=second, label="transfer"),
            FeedbackEntry("bank", served=first, rating=5),
            FeedbackEntry("bank", served=second, label="refund"),  # corrects the correction
            FeedbackEntry("bank", inputs={"text": "new intent text"}, label="crypto", source="import"),
        ],
    )
    assert ids == sorted(ids) and len(ids) == 4
    frame = labelled_feedback(store, "bank")
    assert list(frame.columns) == [
        "feedback_id", "request_id", "model", "text", "label", "predicted", "created_at",
    ]  # fmt: skip
    assert frame["feedback_id"].tolist() == [ids[2], ids[3]]
    assert frame["text"].tolist() == ["refund me", "new intent text"]
    assert frame["label"].tolist() == ["refund", "crypto"]
    assert frame["request_id"].tolist() == ["r1", None]
    assert frame["model"].tolist() == ["m@1", None]
    assert frame["predicted"].tolist() == ["card", None]
    assert labelled_feedback(store, "bank", after_id=ids[2])["feedback_id"].tolist() == [ids[3]]
    assert labelled_feedback(store, "other").empty
    assert list(labelled_feedback(store, "other").columns)[:3] == ["feedback_id", "request_id", "model"]
    listed = list_feedback(store, "bank")
    assert listed["feedback_id"].tolist() == ids[::-1] and listed["rating"].tolist()[2] == 5
    served = served_requests(store, "bank")
    assert served["feedback_label"].tolist() == ["refund", None] or served["feedback_label"].tolist() == [
        None,
        "refund",
    ]
    assert served["predicted"].tolist() == ["card", "card"] and served["confidence"].tolist() == [0.9, 0.6]


def test_generation_feedback_is_an_answer_column(home):
    store = Store(Settings.resolve(home))
    save_deployment(store, "chat", "lm@1", "generation", {})
    record_requests(
        store, [RequestRecord("c1", 0, "chat", "lm@1", {"messages": "[]"}, {"answer": "hi there"})]
    )
    (served,) = find_requests(store, "c1")
    add_feedback(store, [FeedbackEntry("chat", served=served, answer="hello, how can I help?")])
    frame = labelled_feedback(store, "chat")
    assert frame["answer"].tolist() == ["hello, how can I help?"]
    assert frame["predicted"].tolist() == ["hi there"]


@pytest.mark.local_only
def test_feedback_commit_is_visible_to_another_connection_at_once(home):
    """The acknowledged write is committed (not left in an open transaction) and the
    connection goes back to the workspace's NORMAL sync mode for other writes."""
    store = Store(Settings.resolve(home))
    _log(store)
    (served,) = find_requests(store, "r2")
    (fid,) = add_feedback(store, [FeedbackEntry("other", served=served, label="y")])
    con = sqlite3.connect(home / "llmos.db")
    assert con.execute("select label, model from feedback where id = ?", (fid,)).fetchall() == [("y", "o@2")]
    con.close()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
