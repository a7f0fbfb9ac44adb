# ruff: noqa: E501
"""F11 backfill: a 100,000-text dataset ingested into a watch by a backfill job on the
local kernel and by one whose texts are scored on local Ray Data gives the same series.

The classifier is the tests' tiny BERT (2 layers, 32 wide, random weights, trained for
a few seconds on the synthetic intents, refunds negative), so the figure is about the
backfill path (checking, scoring, storing in chunks with the bucket counts, detection),
not about a model's speed. Each job runs the way the kernel runs it (claimed, then its
body in this process); the series of every topic are compared bucket by bucket.

    python benchmarks/bench_watch_backfill.py            # 100,000 texts
    python benchmarks/bench_watch_backfill.py --texts 5000
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import FILLER, TOPICS, make_rows, tiny_spec

from common import machine, write_result

START = datetime(2026, 3, 2)


def tiny_bert(folder: Path) -> Path:
    """The tests' tiny random BERT (`tests/conftest.py` tiny_model_dir)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += sorted({w for ws in TOPICS.values() for w in ws} | set(FILLER))
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)  # fmt: skip
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run(ws, job_id: int) -> float:
    from llmos.kernel import jobs
    from llmos.kernel.worker import run_job

    t0 = time.perf_counter()
    jobs.start(ws.store, job_id, threads=1)  # claimed, as the scheduler would
    state = run_job(ws.store, job_id)
    if state != "succeeded":
        raise SystemExit(f"job {job_id} {state}: {ws.job_log(job_id)}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    import torch

    from llmos import Workspace

    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    ws = Workspace(folder / "ws")
    ws.init()
    train = make_rows(150)
    train["label"] = ["negative" if lab == "refund" else "positive" for lab in train["label"]]
    train.to_csv(folder / "senti.csv", index=False)
    ws.import_dataset(folder / "senti.csv", "senti")
    ws.train(
        tiny_spec(
            tiny_bert(folder / "tiny"),
            name="senti",
            data={"train": "senti", "split": {"test": 0.2, "seed": 1}},
        )
    )
    ws.deploy("senti@1", "senti")
    rng = random.Random(3)
    texts = make_rows(args.texts, seed=5)["text"].tolist()
    span = 30 * 24 * 3600  # 30 days, in no particular order
    frame = pd.DataFrame({
        "text": texts,
        "timestamp": [(START + timedelta(seconds=rng.randrange(span))).isoformat() for _ in texts],
        "topic": [f"t{rng.randrange(8)}" for _ in texts],
    })  # fmt: skip
    frame.to_csv(folder / "history.csv", index=False)
    ws.import_dataset(folder / "history.csv", "history")
    seconds = {}
    for backend in ("local", "ray"):
        ws.create_watch(backend, "senti", topic_column="topic")
        job = ws.backfill_watch(backend, "history", start_kernel=False, backend=backend, workers=args.workers)
        seconds[backend] = run(ws, job.id)
        print(f"{backend}: {args.texts} texts in {seconds[backend]:.0f}s ({args.texts / seconds[backend]:.0f} texts/s)",
              flush=True)  # fmt: skip
    names = ws.watch_status("local").series
    assert names == ws.watch_status("ray").series
    differing = []
    for name in names:
        a = [(p.bucket, p.volume, p.negative) for p in ws.watch_series("local", name).points]
        b = [(p.bucket, p.volume, p.negative) for p in ws.watch_series("ray", name).points]
        if a != b:
            differing.append(name)
    same_alerts = [(x.series, x.metric, x.episode_start) for x in ws.watch_alerts("local")] == [
        (x.series, x.metric, x.episode_start) for x in ws.watch_alerts("ray")
    ]
    counts = {b: ws.watch_status(b).texts for b in ("local", "ray")}
    print(f"\n{'backend':<8} {'texts':>8} {'seconds':>8} {'texts/s':>8}")
    for b in ("local", "ray"):
        print(f"{b:<8} {counts[b]:>8} {seconds[b]:>8.0f} {counts[b] / seconds[b]:>8.0f}")
    print(f"series compared: {len(names)}, differing: {differing or 'none'}; same alerts: {same_alerts}")
    out = write_result("bench_watch_backfill", {
        "texts": args.texts, "workers": args.workers, "seconds": seconds, "stored": counts,
        "series": len(names), "differing_series": differing, "same_alerts": same_alerts, "machine": machine(),
        "note": "loaded machine: 2 cores shared by several developers",
    })  # fmt: skip
    print(f"wrote {out}")
    if differing or not same_alerts or counts["local"] != counts["ray"] != args.texts:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
