"""Feedback on served predictions over real HTTP: request ids, durable acknowledgement,
the model that answered, and every kind of bad feedback with its status and message."""

from __future__ import annotations

import json

import httpx
import pytest

from llmos import Client
from llmos.api.server import ServerThread
from llmos.cli.main import main
from llmos.core.errors import DataError, NotFoundError, UsageError
from llmos.sdk.client import ServerError
from llmos.security.policy import open_policy
from llmos.serve.runtime import ServeConfig
from llmos.store.feedback import labelled_feedback, served_requests
from tests.conftest import snapshot

TEXTS = ["my card has not arrived", "send money to my account"]


def _post(url: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=30)


def test_predictions_carry_request_ids_and_feedback_is_stored_with_the_model(lora_ws):
    ws = lora_ws
    ws.deploy("lora0@1", "bank")
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1), policy=open_policy()) as url:
        r = _post(url, "/v1/deployments/bank/predict", {"inputs": TEXTS})
        assert r.status_code == 200
        body = r.json()
        rid = body["request_id"]
        assert r.headers["x-request-id"] == rid and rid.startswith("req-")
        assert [(p["request_id"], p["index"]) for p in body["predictions"]] == [(rid, 0), (rid, 1)]
        predicted = body["predictions"][1]["label"]
        truth = next(lab for lab in ("card", "refund", "transfer") if lab != predicted)
        # feedback right after the prediction: found even if the request log has not flushed yet
        ack = Client(url).submit_feedback("bank", rid, index=1, label=truth)
        assert ack["model"] == "lora0@1" and ack["index"] == 1 and ack["feedback_id"] >= 1
        single = Client(url).predict("bank", "refund please")[0]
        assert Client(url).submit_feedback("bank", single["request_id"], rating=4)["index"] == 0
    frame = labelled_feedback(ws.store, "bank")
    assert frame[["text", "label", "predicted", "model"]].values.tolist() == [
        [TEXTS[1], truth, predicted, "lora0@1"]
    ]
    served = served_requests(ws.store, "bank")
    assert served["text"].tolist() == [*TEXTS, "refund please"]
    assert served["confidence"].between(0, 1).all()
    assert served["feedback_label"].tolist() == [None, truth, None]
    listed = ws.feedback("bank")
    assert listed[0].rating == 4 and listed[1].label == truth


def test_bad_feedback_gets_its_status_and_names_the_problem(lora_ws):
    ws = lora_ws
    ws.deploy("lora0@1", "bank")
    ws.deploy("lora0@1", "other")
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1), policy=open_policy()) as url:
        client = Client(url)
        rid = client.predict("bank", TEXTS)[0]["request_id"]
        other = client.predict("other", TEXTS[0])[0]["request_id"]
        path = "/v1/deployments/bank/feedback"

        r = _post(url, "/v1/deployments/nope/feedback", {"request_id": rid, "label": "card"})
        assert r.status_code == 404 and "deployment 'nope' not found" in r.json()["error"]["message"]
        r = _post(url, path, {"request_id": "req-missing", "label": "card", "index": 0})
        assert r.status_code == 404 and "request id 'req-missing' not found" in r.json()["error"]["message"]
        r = _post(url, path, {"request_id": other, "label": "card"})
        assert r.status_code == 422 and "served by deployment 'other'" in r.json()["error"]["message"]
        r = _post(url, path, {"request_id": rid, "label": "card"})
        assert r.status_code == 422 and "had 2 inputs; give `index` 0 to 1" in r.json()["error"]["message"]
        r = _post(url, path, {"request_id": rid, "index": 5, "label": "card"})
        assert r.status_code == 422 and "has no input 5" in r.json()["error"]["message"]
        r = _post(url, path, {"request_id": rid, "index": 0, "label": "crad"})
        message = r.json()["error"]["message"]
        assert r.status_code == 422 and "label 'crad' is not one of the 3 labels of lora0@1" in message
        assert "card, refund, transfer" in message
        r = _post(url, path, {"request_id": rid, "index": 0})
        assert (
            r.status_code == 422 and "exactly one of label, rating or answer" in r.json()["error"]["message"]
        )
        r = _post(url, path, {"request_id": rid, "index": 0, "rating": 9})
        assert r.status_code == 422 and r.json()["error"]["message"].startswith("rating:")
        r = _post(url, path, {"request_id": rid, "index": 0, "answer": "a card question"})
        assert (
            r.status_code == 422 and "is a classifier; send the correct label" in r.json()["error"]["message"]
        )
        with pytest.raises(NotFoundError, match="req-gone"):
            client.submit_feedback("bank", "req-gone", label="card")
        with pytest.raises(ServerError, match="crad"):
            client.submit_feedback("bank", rid, index=0, label="crad")
        assert ws.feedback("bank") == [] and client.feedback("bank") == []
        # a new intent is a deliberate choice; once introduced, it is a known label
        assert client.submit_feedback("bank", rid, index=0, label="crypto", new_label=True)["feedback_id"]
        assert client.submit_feedback("bank", rid, index=1, label="crypto")["feedback_id"]
    assert labelled_feedback(ws.store, "bank")["label"].tolist() == ["crypto", "crypto"]


def test_feedback_import_is_all_or_nothing_and_names_the_row(lora_ws, tmp_path, capsys):
    ws = lora_ws
    ws.deploy("lora0@1", "bank")
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1), policy=open_policy()) as url:
        rows = Client(url).predict("bank", TEXTS)
    rid = rows[0]["request_id"]
    good = tmp_path / "good.csv"
    good.write_text(
        f"request_id,index,label,text\n{rid},0,card,\n{rid},1,transfer,\n,,crypto,how do I buy bitcoin\n"
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(f"request_id,index,label,text\n{rid},0,card,\n{rid},1,tranfser,\n")
    before = snapshot(ws.home)
    with pytest.raises(UsageError, match=r"bad.csv row 3: label 'tranfser' is not one of"):
        ws.import_feedback(bad, "bank")
    with pytest.raises(UsageError, match=r"good.csv row 4: label 'crypto' is not one of"):
        ws.import_feedback(good, "bank")
    nothing = tmp_path / "nothing.csv"
    nothing.write_text("label\ncard\n")
    with pytest.raises(DataError, match=r"nothing.csv row 2: no request id and no 'text'"):
        ws.import_feedback(nothing, "bank")
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"request_id": "req-x", "label": "card"}\n')
    with pytest.raises(NotFoundError, match=r"missing.jsonl row 1: request id 'req-x' not found"):
        ws.import_feedback(missing, "bank")
    home = ["--home", str(ws.home)]
    assert main([*home, "feedback", "import", str(bad), "--deployment", "bank"]) == 2
    assert "bad.csv row 3: label 'tranfser'" in capsys.readouterr().err
    assert snapshot(ws.home) == before
    assert main([*home, "feedback", "import", str(good), "-d", "bank", "--new-labels", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["imported"], result["on_requests"], result["new_rows"]) == (3, 2, 1)
    assert main([*home, "feedback", "list", "bank", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in listed] == ["crypto", "transfer", "card"]
    assert [r["source"] for r in listed] == ["import"] * 3
    frame = labelled_feedback(ws.store, "bank")
    assert frame["text"].tolist() == [*TEXTS, "how do I buy bitcoin"]
    assert frame["label"].tolist() == ["card", "transfer", "crypto"]
    assert frame["model"].tolist() == ["lora0@1", "lora0@1", None]


def test_chat_answers_are_logged_under_their_id_and_take_corrected_answers(ws, tiny_lm_dir):
    ws.deploy(str(tiny_lm_dir), "chat")
    messages = [{"role": "user", "content": "what is my balance"}]
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1), policy=open_policy()) as url:
        body = {"model": "chat", "messages": messages, "max_tokens": 4}
        answer = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60).json()
        ident = answer["id"]
        assert ident.startswith("chatcmpl-")
        r = _post(url, "/v1/deployments/chat/feedback", {"request_id": ident, "label": "balance"})
        assert r.status_code == 422 and "generates text; send an answer" in r.json()["error"]["message"]
        ack = Client(url).submit_feedback("chat", ident, answer="your balance is in the app")
        assert ack["model"] == str(tiny_lm_dir)
    frame = labelled_feedback(ws.store, "chat")
    assert frame["answer"].tolist() == ["your balance is in the app"]
    assert frame["predicted"].tolist() == [answer["choices"][0]["message"]["content"]]
    assert '"what is my balance"' in frame["messages"].iloc[0]


def test_feedback_on_a_request_still_in_the_log_queue_flushes_it_first(lora_ws, monkeypatch):
    """The writer is held back (as under a burst of traffic): feedback without a flush
    cannot see the request yet; with the server's flush it waits for the write and succeeds."""
    import threading

    from llmos.serve import requestlog
    from llmos.serve.feedback import FeedbackItem, submit_feedback
    from llmos.serve.targets import Target

    ws = lora_ws
    ws.deploy("lora0@1", "bank")
    gate = threading.Event()
    write = requestlog.record_requests

    def held_back(store, batch):
        gate.wait(30)
        write(store, batch)

    monkeypatch.setattr(requestlog, "record_requests", held_back)
    log = requestlog.RequestLog(ws.store)
    target = Target("lora0@1", "classifier", "model:lora0@1:", None, {"input": {"column": "text"}})
    log.add_predictions("req-queued", "bank", target, ["card arrived"], [{"label": "card", "score": 0.9}])
    item = FeedbackItem("req-queued", label="refund")
    with pytest.raises(NotFoundError, match="'req-queued' not found"):
        submit_feedback(ws.store, "bank", item)
    threading.Timer(0.2, gate.set).start()
    ack = submit_feedback(ws.store, "bank", item, flush=log.flush)
    assert (ack["request_id"], ack["model"]) == ("req-queued", "lora0@1")
    log.close()
    assert labelled_feedback(ws.store, "bank")[["text", "label", "predicted"]].values.tolist() == [
        ["card arrived", "refund", "card"]
    ]
