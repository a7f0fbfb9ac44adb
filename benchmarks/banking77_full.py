"""Full Banking77 (10,003 train / 3,080 test rows, 77 intents) with llmos: MiniLM + LoRA
and MiniLM full fine-tuning, 3 epochs each, llmos defaults otherwise.

Runs `llmos train` through the SDK exactly as a user would, prints a table and writes
`benchmarks/results/banking77_full.json`. Targets: LoRA >= 88%, full >= 90% test accuracy.

    python benchmarks/banking77_full.py [--methods lora full] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_DATA, machine, write_result

TARGETS = {"lora": 0.88, "full": 0.90}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["lora", "full"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--home", type=Path, default=None, help="Workspace (default: a temp folder).")
    args = parser.parse_args()

    from llmos import Workspace
    from llmos.cli.output import RichProgress

    folder = SHARED_DATA / "banking77"
    if not folder.exists():
        raise SystemExit(f"Banking77 not found at {folder}")
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(args.home or Path(tmp) / "ws")
        ws.import_dataset(folder / "train.csv", "banking77-train")
        ws.import_dataset(folder / "test.csv", "banking77-test")
        runs: dict[str, dict[str, Any]] = {}
        for method in args.methods:
            spec = {
                "name": f"banking77-{method}",
                "model": "minilm",
                "method": method,
                "data": {"train": "banking77-train", "test": "banking77-test"},
                "inputs": [{"name": "text"}],
                "outputs": [{"name": "category"}],
                "train": {"epochs": args.epochs, "batch_size": 32, "seed": 42},
            }
            started = time.perf_counter()
            outcome = ws.train(spec, RichProgress())
            m = outcome.metrics
            runs[method] = {
                "model": outcome.model.ref,
                "accuracy": m["accuracy"],
                "macro_f1": m["macro_f1"],
                "weighted_f1": m["weighted_f1"],
                "train_seconds": m["train_seconds"],
                "train_samples_per_second": m["train_samples_per_second"],
                "total_seconds": round(time.perf_counter() - started, 1),
                "trainable_parameters": m["trainable_parameters"],
                "target_accuracy": TARGETS.get(method),
                "spec": spec,
            }
            print(
                f"{method}: accuracy {100 * m['accuracy']:.2f}%  train {m['train_seconds']:.0f}s", flush=True
            )
    print(f"\n{'method':<8} {'accuracy':>9} {'macro F1':>9} {'train s':>8} {'samples/s':>10} {'target':>7}")
    for method, r in runs.items():
        target = f"{100 * r['target_accuracy']:.0f}%" if r["target_accuracy"] else "-"
        print(
            f"{method:<8} {100 * r['accuracy']:>8.2f}% {100 * r['macro_f1']:>8.2f}% "
            f"{r['train_seconds']:>8.0f} {r['train_samples_per_second']:>10.1f} {target:>7}"
        )
    path = write_result("banking77_full", {"epochs": args.epochs, "machine": machine(), "runs": runs})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
