"""Faithfulness and latency of `predict --explain` on SST-2 dev.

Fine-tunes all-MiniLM-L6-v2 quickly on an SST-2 training subset with `Workspace.train`,
then scores three attributions of each dev text's predicted label:

1. `integrated_gradients`: what llmos returns (`llmos.train.explain`, Captum's
   LayerIntegratedGradients over the word embeddings, 32 steps);
2. `gradient_x_input`: Captum's LayerGradientXActivation on the same layer (one backward
   pass, the cheap alternative a user would reach for);
3. `random`: random scores (the reference the issue names).

Faithfulness follows ERASER (DeYoung et al., 2020): for k in 1, 5, 10, 20, 50% of the
tokens, comprehensiveness = p(label | text) - p(label | text without its top-k tokens)
(higher is better) and sufficiency = p(label | text) - p(label | only its top-k tokens)
(lower is better), averaged over k and texts; tokens are deleted, not masked. Latency is
`Workspace.predict_model(..., explain=True)` for one 64-token text (62 word pieces plus
[CLS]/[SEP]), p50 and p95 over repeated calls.

    python benchmarks/bench_explain.py --quick   # 800 training rows, 120 dev texts, 20 timed calls
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
import torch

from common import SHARED_DATA, machine, write_result

FRACTIONS = (0.01, 0.05, 0.1, 0.2, 0.5)


def sst2() -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = SHARED_DATA / "sst2"
    if not folder.exists():
        raise SystemExit(f"SST-2 not found at {folder}")
    train = pd.read_csv(folder / "train.tsv", sep="\t", quoting=3)
    dev = pd.read_csv(folder / "dev.tsv", sep="\t", quoting=3)
    train = train.rename(columns={"sentence": "text"})
    dev = dev.rename(columns={"content": "text"})
    return train[["text", "label"]], dev[["text", "label"]]


def probs(model: Any, seqs: list[list[int]], k: int) -> list[float]:
    """p(label k) for each token-id sequence (one padded batch)."""
    width = max(len(s) for s in seqs)
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    with torch.no_grad():
        return torch.softmax(model(ids, mask), -1)[:, k].tolist()


def faithfulness(model: Any, ids: list[int], scores: list[float], k: int) -> tuple[float, float]:
    """(comprehensiveness, sufficiency) of `scores` over the inner tokens of `ids`."""
    cls, inner, sep = ids[0], ids[1:-1], ids[-1]
    order = sorted(range(len(inner)), key=lambda i: -scores[i])
    seqs = [ids]
    for f in FRACTIONS:
        top = set(order[: max(1, round(f * len(inner)))])
        seqs.append([cls, *[t for i, t in enumerate(inner) if i not in top], sep])
        seqs.append([cls, *[t for i, t in enumerate(inner) if i in top], sep])
    p = probs(model, seqs, k)
    comp = np.mean([p[0] - p[1 + 2 * j] for j in range(len(FRACTIONS))])
    suff = np.mean([p[0] - p[2 + 2 * j] for j in range(len(FRACTIONS))])
    return float(comp), float(suff)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="reduced run (the shared machine)")
    parser.add_argument("--train-rows", type=int, default=6000)
    parser.add_argument("--dev-rows", type=int, default=872)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.quick:
        args.train_rows, args.dev_rows, args.calls = 800, 120, 20
    torch.set_num_threads(args.threads)
    from captum.attr import LayerGradientXActivation

    from llmos import Workspace
    from llmos.train.explain import attribute

    train, dev = sst2()
    train = train.sample(n=min(args.train_rows, len(train)), random_state=0)
    dev = dev.sample(n=min(args.dev_rows, len(dev)), random_state=0).reset_index(drop=True)
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        train.to_csv(Path(tmp) / "train.csv", index=False)
        ws.import_dataset(Path(tmp) / "train.csv", "sst2")
        start = time.perf_counter()
        outcome = ws.train(
            {
                "name": "sst2",
                "model": "minilm",
                "method": "full",
                "data": {"train": "sst2", "split": {"test": 0.1, "seed": 0}},
                "inputs": [{"name": "text", "max_length": 64}],
                "outputs": [{"name": "label"}],
                "train": {"epochs": 1, "batch_size": 32, "seed": 0},
            }
        )
        train_s = time.perf_counter() - start
        predictor = ws.predictor("sst2")
        model, tok = predictor.model, predictor.input.tokenizer
        special = set(tok.all_special_ids)
        gxa = LayerGradientXActivation(lambda i, m: model(i, m), model.encoder.get_input_embeddings())
        dev_acc = float(
            np.mean(
                [
                    str(r["label"]) == str(y)
                    for r, y in zip(ws.predict("sst2", dev["text"].tolist()), dev["label"])
                ]
            )
        )

        found: dict[str, list[tuple[float, float]]] = {
            "integrated_gradients": [],
            "gradient_x_input": [],
            "random": [],
        }
        for text in dev["text"]:
            ids = tok(text, truncation=True, max_length=64)["input_ids"]
            if len(ids) < 4:
                continue
            k, ig = attribute(predictor, ids, special)
            x = torch.tensor([ids])
            gx = gxa.attribute(x, target=k, additional_forward_args=(torch.ones_like(x),)).sum(-1)[0].tolist()
            for name, scores in (
                ("integrated_gradients", ig),
                ("gradient_x_input", gx),
                ("random", [rng.random() for _ in ids]),
            ):
                found[name].append(faithfulness(model, ids, scores[1:-1], k))

        # latency: one 64-token text per call, through the SDK (encode, predict, explain)
        words = " ".join(dev["text"]).split()
        texts = []
        for i in range(args.calls):
            piece = words[(i * 50) % (len(words) - 200) :]
            ids = tok(" ".join(piece[:120]), truncation=True, max_length=64)["input_ids"]
            texts.append(tok.decode(ids[1:-1]))
        lengths = {len(tok(t)["input_ids"]) for t in texts}
        ws.predict_model("sst2", [texts[0]], explain=True)  # warm
        times = []
        for t in texts:
            start = time.perf_counter()
            ws.predict_model("sst2", [t], explain=True)
            times.append(time.perf_counter() - start)
        plain = []
        for t in texts:
            start = time.perf_counter()
            ws.predict_model("sst2", [t])
            plain.append(time.perf_counter() - start)

    rows = {}
    for name, pairs in found.items():
        comp, suff = np.mean([p[0] for p in pairs]), np.mean([p[1] for p in pairs])
        rows[name] = {"comprehensiveness": round(float(comp), 4), "sufficiency": round(float(suff), 4)}
    base = rows["random"]["comprehensiveness"]
    for name in rows:
        rows[name]["comprehensiveness_vs_random"] = round(rows[name]["comprehensiveness"] / base, 2)
    latency = {
        "tokens": sorted(lengths),
        "explain_p50_s": round(float(np.percentile(times, 50)), 3),
        "explain_p95_s": round(float(np.percentile(times, 95)), 3),
        "predict_p95_s": round(float(np.percentile(plain, 95)), 3),
    }
    print(
        f"model: MiniLM full fine-tune, 1 epoch on {len(train)} SST-2 rows in {train_s:.0f}s; "
        f"dev accuracy {dev_acc:.3f} on {len(dev)} texts ({outcome.model.ref})"
    )
    print(f"{'attribution':24} {'compr.':>8} {'suff.':>8} {'compr./random':>14}")
    for name, r in rows.items():
        print(
            f"{name:24} {r['comprehensiveness']:8.4f} {r['sufficiency']:8.4f} "
            f"{r['comprehensiveness_vs_random']:14.2f}"
        )
    print(
        f"latency ({latency['tokens']} tokens, {args.threads} threads): "
        f"explain p50 {latency['explain_p50_s']}s "
        f"p95 {latency['explain_p95_s']}s; predict alone p95 {latency['predict_p95_s']}s"
    )
    path = write_result(
        "bench_explain",
        {
            "quick": args.quick,
            "train_rows": len(train),
            "dev_texts": len(found["random"]),
            "dev_accuracy": dev_acc,
            "faithfulness": rows,
            "latency": latency,
            "machine": machine(),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
