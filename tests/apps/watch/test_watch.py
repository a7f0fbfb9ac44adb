"""Watches through `llmos.Workspace` and the CLI: texts scored by a real (tiny) classifier
deployment, topics from keyword rules or a column, incremental file reads, series with
their texts, an alert once per episode with examples, acknowledgement, the chart, and
each kind of bad input named in one line with nothing stored."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from llmos.cli.main import app, main
from llmos.core.errors import DataError, NotFoundError, UsageError
from tests.conftest import snapshot

START = datetime(2026, 3, 2)  # a Monday
NEG = ["refund", "return", "money", "back", "merchant", "charge"]
POS = ["card", "arrived", "delivery", "transfer", "send", "account"]
FILL = ["my", "the", "please", "when", "will", "is", "a"]


def text(rng: random.Random, negative: bool) -> str:
    words = rng.sample(NEG if negative else POS, 2) + rng.sample(FILL, 2)
    rng.shuffle(words)
    return " ".join(words)


def rows(
    hours: int, per_hour: int = 14, surge: tuple[int, int] | None = None, seed: int = 0, prefix: str = "t"
):
    """`per_hour` texts an hour, a fifth negative; during `surge` (first, last hour) 70%."""
    rng = random.Random(seed)
    out = []
    for h in range(hours):
        share = 0.7 if surge and surge[0] <= h <= surge[1] else 0.2
        for i in range(per_hour):
            moment = START + timedelta(hours=h, minutes=rng.randrange(60))
            out.append({"id": f"{prefix}{h}-{i}", "text": text(rng, rng.random() < share),
                        "timestamp": moment.isoformat() + "Z", "topic": "a" if i % 2 else "b"})  # fmt: skip
    return out


def watch_tables(home) -> dict:
    tables = snapshot(home)["tables"]
    return {k: v for k, v in tables.items() if k.startswith("watch")}


DETECTOR = {"warmup": 48}


def test_a_negative_surge_alerts_once_with_examples_and_is_acknowledged(senti_ws, tmp_path):
    ws = senti_ws
    ws.create_watch("surge", "senti", topic_column="topic", detector=DETECTOR)
    first = ws.ingest_watch("surge", rows(80, surge=(70, 73)))
    assert first.stored == 80 * 14 and first.duplicates == 0
    fired = [a for a in first.alerts if a.series == "all"]
    assert [(a.metric, a.episode_start.hour) for a in fired] == [("negative_share", (70 % 24))]
    alert = fired[0]
    assert alert.value > alert.baseline + 0.3 and alert.examples
    assert all(any(w in e for w in NEG) for e in alert.examples)
    # the texts behind the alert's bucket are one call away, most negative first
    behind = ws.watch_texts("surge", alert.bucket)
    assert behind and behind[0].score >= behind[-1].score and behind[0].negative
    # the same rows again (a retry): nothing counted twice, no alert twice
    again = ws.ingest_watch("surge", rows(80, surge=(70, 73)))
    assert again.stored == 0 and again.duplicates == 80 * 14 and again.alerts == []
    status = ws.watch_status("surge")
    assert status.texts == 80 * 14 and status.open_alerts == status.alerts >= 1
    assert set(status.series) == {"all", "topic:a", "topic:b"}
    acked = ws.ack_watch_alert("surge", alert.alert_id)
    assert acked.acked_by and acked.acked_at is not None
    assert alert.alert_id not in [a.alert_id for a in ws.watch_alerts("surge", open_only=True)]
    with pytest.raises(NotFoundError, match="no alert 999"):
        ws.ack_watch_alert("surge", 999)
    series = ws.watch_series("surge", "topic:a")
    assert len(series.points) == 80 and sum(p.volume for p in series.points) == 80 * 7
    png = tmp_path / "surge.png"
    assert ws.plot_watch("surge", "all", png).png == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_keyword_topics_out_of_order_rows_and_series(senti_ws):
    ws = senti_ws
    ws.create_watch("kw", "senti", topics="cards:card|delivery,refunds:refund")
    batch = [
        {"text": "my card arrived", "timestamp": "2026-03-02T10:05:00Z"},
        {"text": "refund my money please", "timestamp": "2026-03-02T08:59:59+00:00"},  # earlier: accepted
        {"text": "the delivery of my card", "timestamp": 1772445600},  # epoch seconds, 2026-03-02 10:00
    ]
    assert ws.ingest_watch("kw", batch).stored == 3
    cards = ws.watch_series("kw", "topic:cards")
    assert [(p.bucket.hour, p.volume) for p in cards.points] == [(10, 2)]
    refunds = ws.watch_series("kw", "topic:refunds").points
    assert [(p.bucket.hour, p.volume, p.negative) for p in refunds] == [(8, 1, 1)]
    every = ws.watch_series("kw").points
    assert [(p.bucket.hour, p.volume) for p in every] == [(8, 1), (9, 0), (10, 2)]
    with pytest.raises(UsageError, match="no series 'topic:nope'"):
        ws.watch_series("kw", "topic:nope")


def test_files_are_read_incrementally(senti_ws, tmp_path):
    ws = senti_ws
    ws.create_watch("files", "senti")
    jsonl = tmp_path / "posts.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows(3, 4)))
    assert ws.ingest_watch_file("files", jsonl).stored == 12
    assert ws.ingest_watch_file("files", jsonl).stored == 0  # nothing new
    with jsonl.open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows(2, 3, prefix="late")))
    assert ws.ingest_watch_file("files", jsonl).stored == 6
    folder = tmp_path / "feed"
    folder.mkdir()
    (folder / "a.csv").write_text("text,timestamp\nmy card arrived,2026-03-02T01:00:00Z\n")
    assert ws.ingest_watch_file("files", folder).stored == 1
    status = ws.watch_status("files")
    assert status.texts == 19 and sorted(status.sources.values()) == [1, 18]


def test_bad_input_is_named_in_one_line_and_nothing_is_stored(senti_ws, tmp_path):
    ws = senti_ws
    ws.create_watch("bad", "senti")
    before = watch_tables(ws.home)
    with pytest.raises(UsageError, match="--classifier 'ghost': no such deployment"):
        ws.create_watch("ghostly", "ghost")
    csv = tmp_path / "posts.csv"
    csv.write_text("text,timestamp\nfine,2026-03-02T01:00:00Z\nno time here,\n")
    with pytest.raises(DataError, match=r"^posts.csv row 2: no timestamp$"):
        ws.ingest_watch_file("bad", csv)
    csv.write_text("text,timestamp\nfine,2026-03-02T01:00:00Z\nbad time,yesterday-ish\n")
    with pytest.raises(DataError, match=r"posts.csv row 2: timestamp 'yesterday-ish' does not parse"):
        ws.ingest_watch_file("bad", csv)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="the file is empty"):
        ws.ingest_watch_file("bad", empty)
    with pytest.raises(DataError, match=r"^row 1: no text in column 'text'$"):
        ws.ingest_watch("bad", [{"text": "ok", "timestamp": "2026-03-02"}, {"timestamp": "2026-03-02"}])
    with pytest.raises(NotFoundError, match="no watch 'nope'"):
        ws.ingest_watch("nope", [{"text": "ok", "timestamp": "2026-03-02"}])
    assert watch_tables(ws.home) == before


def test_cli_verbs(senti_ws, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMOS_HOME", str(senti_ws.home))
    runner = CliRunner()
    made = runner.invoke(app, ["watch", "create", "cli", "--classifier", "senti", "--topics", "cards:card"])
    assert made.exit_code == 0, made.output
    feed = tmp_path / "feed.jsonl"
    feed.write_text("".join(json.dumps(r) + "\n" for r in rows(2, 3)))
    ingested = runner.invoke(app, ["watch", "ingest", "cli", str(feed)])
    assert ingested.exit_code == 0 and "6 texts stored" in ingested.output
    series = runner.invoke(app, ["watch", "series", "cli", "--json"])
    assert sum(p["volume"] for p in json.loads(series.output)["points"]) == 6
    assert runner.invoke(app, ["watch", "alerts", "cli", "--json"]).output.strip() == "[]"
    code = main(["watch", "create", "x", "--classifier", "ghost"])
    captured = capsys.readouterr()
    assert code == 2 and "no such deployment" in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_backfill_job_gives_the_same_series_as_an_ingest(senti_ws, tmp_path):
    import pandas as pd

    from llmos.kernel import jobs
    from llmos.kernel.worker import run_job

    ws = senti_ws
    data = rows(30, per_hour=6, seed=9, prefix="bf")
    frame = pd.DataFrame(data).drop(columns=["id"])  # ids are made from the dataset and row
    frame.to_csv(tmp_path / "history.csv", index=False)
    ws.import_dataset(tmp_path / "history.csv", "history")
    ws.create_watch("direct", "senti", topic_column="topic")
    ws.create_watch("backfilled", "senti", topic_column="topic")
    ws.ingest_watch("direct", data)
    job = ws.backfill_watch("backfilled", "history", start_kernel=False)
    jobs.start(ws.store, job.id, threads=1)  # claimed, as the scheduler would
    assert run_job(ws.store, job.id) == "succeeded", ws.job_log(job.id)
    assert ws.job(job.id).result["stored"] == len(data)
    for series in ("all", "topic:a"):
        got = [(p.bucket, p.volume, p.negative) for p in ws.watch_series("backfilled", series).points]
        assert got == [(p.bucket, p.volume, p.negative) for p in ws.watch_series("direct", series).points]
    again = ws.backfill_watch("backfilled", "history", start_kernel=False)  # a rerun counts nothing twice
    jobs.start(ws.store, again.id, threads=1)
    assert run_job(ws.store, again.id) == "succeeded"
    assert ws.watch_status("backfilled").texts == len(data)
    with pytest.raises(NotFoundError):
        ws.backfill_watch("backfilled", "nope", start_kernel=False)


def test_a_watch_scores_the_way_its_deployment_serves_onnx(senti_ws):
    from llmos.models.onnx import OnnxClassifier
    from llmos.ops import predict

    ws = senti_ws
    ws.deploy("senti@1", "senti-onnx", optimize="onnx")
    ws.create_watch("fast", "senti-onnx")
    data = rows(2, 10, seed=3, prefix="onnx")
    key = (str(ws.store.settings.home), "senti@1", "onnx")
    predict._cache.pop(key, None)
    ws.ingest_watch("fast", data)
    # the ingest itself loaded the ONNX Runtime copy (beside the plain one), with torch's labels
    assert isinstance(predict._cache[key].model, OnnxClassifier)
    plain = ws.predict("senti@1", [r["text"] for r in data])
    stored = {t.text: t for t in ws.watch_texts("fast", limit=100)}
    for row, p in zip(data, plain):
        assert stored[row["text"]].label == p["label"]
        assert stored[row["text"]].score == pytest.approx(p["probabilities"]["negative"], abs=1e-4)
    # a later batch whose texts fall in an earlier bucket is accepted and placed there
    late = [{"id": "late", "text": "my card arrived", "timestamp": (START - timedelta(hours=2)).isoformat()}]
    assert ws.ingest_watch("fast", late).stored == 1
    points = ws.watch_series("fast").points
    assert points[0].bucket.replace(tzinfo=None) == START - timedelta(hours=2) and points[0].volume == 1
    assert sum(p.volume for p in points) == 21
