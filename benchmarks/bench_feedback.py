"""Feedback and monitoring: what the request log costs serving, how fast feedback is made
durable, and how clearly drift shows on real data.

(a) Request log. The request path only queues records; `--requests` one-text predictions
are logged through `RequestLog.add_predictions` (the exact call a served prediction makes)
and the time per request on the request path is reported, then the writer thread's rate
(records committed per second, in batches) until everything is on disk.
(b) Feedback. `--feedback` events stored one at a time through `add_feedback`, each a
transaction committed with SQLite synchronous=FULL (what the API waits for before its
201): latency p50/p99 and events per second, against the same inserts with the
workspace default (synchronous=NORMAL, no fsync) for comparison.
(c) Drift. A MiniLM classifier (frozen encoder, linear head) trained on 9 of the 12 intents
of the bundled Banking77 demo set is served; window A holds texts of the 9 known intents
from the demo test set, window B texts of the 3 withheld intents; `drift_report` compares
each with the training data (MMD permutation test, domain-classifier AUC, label PSI,
confidence KS, feedback accuracy on 30 labelled rows per window).

    python benchmarks/bench_feedback.py            # about 5 minutes on two shared cores
    python benchmarks/bench_feedback.py --skip-drift

Prints the figures and writes `benchmarks/results/bench_feedback.json`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd

from common import machine, write_result

DEMO = Path(__file__).resolve().parents[1] / "src" / "llmos" / "demo"


def bench_request_log(folder: Path, requests: int) -> dict[str, Any]:
    from llmos.core.settings import Settings
    from llmos.serve.requestlog import RequestLog, new_request_id
    from llmos.serve.targets import Target
    from llmos.store import Store

    store = Store(Settings.resolve(folder / "log-ws"))
    target = Target("bank@1", "classifier", "model:bank@1:", None, {"input": {"column": "text"}})
    row = {"label": "card_arrival", "score": 0.93, "probabilities": {f"l{i}": 0.01 for i in range(77)}}
    log = RequestLog(store)
    start = time.perf_counter()
    for i in range(requests):
        log.add_predictions(new_request_id(), "bank", target, [f"where is my card number {i}"], [row])
    queued = time.perf_counter() - start
    log.flush(300)
    total = time.perf_counter() - start
    log.close()
    return {
        "requests": requests,
        "request_path_us": round(1e6 * queued / requests, 1),
        "writer_records_per_s": round(requests / total),
        "commits": log.commits,
        "records_per_commit": round(log.written / max(1, log.commits), 1),
    }


def bench_feedback(folder: Path, events: int) -> dict[str, Any]:
    from sqlalchemy import select

    from llmos.core.settings import Settings
    from llmos.store import Store
    from llmos.store.feedback import FeedbackEntry, RequestRecord, add_feedback, record_requests
    from llmos.store.schema import Feedback, ServedRequest

    store = Store(Settings.resolve(folder / "fb-ws"))
    record_requests(
        store,
        [
            RequestRecord(f"r{i}", 0, "bank", "bank@1", {"text": "t"}, {"label": "a"}, "a", 0.9)
            for i in range(events)
        ],
    )
    with store.read() as session:
        served = list(session.scalars(select(ServedRequest)))
    durable = []
    for s in served:
        t = time.perf_counter()
        add_feedback(store, [FeedbackEntry("bank", served=s, label="b")])
        durable.append(time.perf_counter() - t)
    plain = []
    for s in served:
        t = time.perf_counter()
        with store.transaction() as session:
            session.add(
                Feedback(deployment="bank", served_id=s.id, request_id=s.request_id, idx=0, label="b")
            )
        plain.append(time.perf_counter() - t)

    def summary(times: list[float]) -> dict[str, float]:
        ordered = sorted(times)
        return {
            "p50_ms": round(1000 * statistics.median(ordered), 2),
            "p99_ms": round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 2),
            "per_s": round(len(times) / sum(times)),
        }

    return {"events": events, "durable_full_sync": summary(durable), "default_normal_sync": summary(plain)}


def bench_drift(folder: Path) -> dict[str, Any]:
    import torch

    from llmos import Client, Workspace
    from llmos.adapt.monitor import drift_report
    from llmos.api.server import ServerThread
    from llmos.security.policy import open_policy
    from llmos.serve.runtime import ServeConfig

    torch.set_num_threads(2)
    train = pd.read_csv(DEMO / "banking_demo_train.csv")
    test = pd.read_csv(DEMO / "banking_demo_test.csv")
    intents = sorted(train["category"].unique())
    known, withheld = intents[:9], intents[9:]
    ws = Workspace(folder / "drift-ws")
    ws.init()
    train[train["category"].isin(known)].groupby("category").head(40).to_csv(
        folder / "known.csv", index=False
    )
    ws.import_dataset(folder / "known.csv", "known")
    start = time.perf_counter()
    outcome = ws.train(
        {
            "name": "bank",
            "model": "minilm",
            "method": "frozen",
            "data": {"train": "known", "split": {"test": 0.2, "seed": 1}},
            "inputs": [{"name": "text", "max_length": 48}],
            "outputs": [{"name": "category"}],
            "train": {"epochs": 4, "batch_size": 16, "lr": 1e-3, "head_lr": 3e-2, "seed": 0},
        }
    )
    train_s = time.perf_counter() - start
    ws.deploy("bank@1", "bank")
    window_a = test[test["category"].isin(known)].sample(120, random_state=0)
    window_b = pd.concat([test, train])[lambda f: f["category"].isin(withheld)].sample(120, random_state=0)
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1), policy=open_policy()) as url:
        client = Client(url)
        for frame, new in ((window_a, False), (window_b, True)):
            rows = client.predict("bank", frame["text"].tolist())
            for row, label in list(zip(rows, frame["category"]))[:30]:
                client.feedback("bank", row["request_id"], index=row["index"], label=label, new_label=new)
    start = time.perf_counter()
    report = drift_report(ws.store, "bank", window=120, permutations=200)
    monitor_s = time.perf_counter() - start
    names = ["A: held-out texts, known intents", "B: withheld intents"]
    windows = []
    for name, w in zip(names, report.windows):
        windows.append(
            {
                "window": name,
                "size": w.size,
                "mmd2": w.mmd,
                "mmd_p": w.drift_p,
                "domain_auc": w.auc,
                "label_psi": w.psi,
                "label_chi2_p": w.labels_p,
                "mean_confidence": w.confidence,
                "confidence_ks_p": w.confidence_p,
                "feedback_accuracy": w.accuracy,
                "alerts": w.alerts,
            }
        )
    return {
        "model": "MiniLM frozen encoder + linear head, 4 epochs, 9 intents x 40 rows (288 train, 72 test)",
        "test_accuracy_known_intents": outcome.metrics["accuracy"],
        "train_seconds": round(train_s, 1),
        "monitor_seconds": round(monitor_s, 1),
        "permutations": 200,
        "windows": windows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--feedback", type=int, default=300)
    parser.add_argument("--skip-drift", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        result["request_log"] = bench_request_log(folder, args.requests)
        print("request log:", result["request_log"])
        result["feedback"] = bench_feedback(folder, args.feedback)
        print("feedback:", result["feedback"])
        if not args.skip_drift:
            result["drift"] = bench_drift(folder)
            for w in result["drift"]["windows"]:
                print(w)
    print("wrote", write_result("bench_feedback", result))


if __name__ == "__main__":
    main()
