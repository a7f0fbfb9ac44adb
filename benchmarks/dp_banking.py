"""Differential privacy's price: MiniLM + LoRA on the demo's 12 Banking77 intents, trained
once without privacy and once with DP-SGD at epsilon 8, same data, same test set.

Both runs go through `Workspace.train` with llmos's defaults for their kind: the plain run
uses the demo spec (3 epochs, batch 32, LoRA's default rates); the private run adds only
`privacy: {epsilon: 8}` and so takes the private defaults (10 epochs, batch 64, higher
rates; delta 1/(10 n)). Prints accuracy, macro-F1, wall time and the epsilon reported by
Opacus's accountant side by side; writes `benchmarks/results/dp_banking.json`.

    OMP_NUM_THREADS=1 python benchmarks/dp_banking.py [--epsilon 8] [--private-epochs N] [--private-lr LR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, machine, write_result

DEMO = ROOT / "src" / "llmos" / "demo"


def spec(privacy: dict[str, Any] | None, train: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "dp-private" if privacy else "dp-plain",
        "model": "minilm",
        "method": "lora",
        "data": {"train": "demo-train", "test": "demo-test"},
        "inputs": [{"name": "text", "max_length": 64}],
        "outputs": [{"name": "category"}],
        "train": train,
    }
    if privacy:
        data["privacy"] = privacy
    return data


def run(ws: Any, task: dict[str, Any]) -> dict[str, Any]:
    from llmos.core.progress import SilentProgress

    class EpochLog(SilentProgress):
        def log(self, message: str) -> None:
            print("  " + message, flush=True)

    outcome = ws.train(task, progress=EpochLog())
    m = outcome.metrics
    return {
        "accuracy": round(m["accuracy"], 4),
        "macro_f1": round(m["macro_f1"], 4),
        "train_seconds": round(m["train_seconds"], 1),
        "epochs": outcome.model.spec["train"]["epochs"],
        "batch_size": outcome.model.spec["train"]["batch_size"],
        "lr": outcome.model.spec["train"]["lr"],
        "head_lr": outcome.model.spec["train"]["head_lr"],
        "privacy": m.get("privacy"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilon", type=float, default=8.0)
    parser.add_argument("--private-epochs", type=int, default=None, help="default: llmos's private default")
    parser.add_argument("--private-lr", type=float, default=None, help="default: llmos's private default")
    parser.add_argument("--skip-plain", action="store_true")
    args = parser.parse_args()

    from llmos import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.init()
        ws.import_dataset(DEMO / "banking_demo_train.csv", "demo-train")
        ws.import_dataset(DEMO / "banking_demo_test.csv", "demo-test")
        rows = {"train": ws.dataset("demo-train").num_rows, "test": ws.dataset("demo-test").num_rows}
        results: dict[str, Any] = {}
        if not args.skip_plain:
            print("training without privacy ...", flush=True)
            results["plain"] = run(ws, spec(None, {"epochs": 3, "batch_size": 32, "seed": 42}))
        private_train: dict[str, Any] = {"seed": 42}
        if args.private_epochs:
            private_train["epochs"] = args.private_epochs
        if args.private_lr:
            private_train["lr"] = args.private_lr
        print(f"training with DP-SGD at epsilon {args.epsilon} ...", flush=True)
        results["private"] = run(ws, spec({"epsilon": args.epsilon}, private_train))

    print(f"\nMiniLM + LoRA, Banking77 demo (12 intents): {rows['train']} train / {rows['test']} test rows")
    print(f"{'run':10} {'epsilon':>8} {'accuracy':>9} {'macro-F1':>9} {'epochs':>7} {'train s':>8}")
    for name, r in results.items():
        eps = f"{r['privacy']['epsilon']:.2f}" if r["privacy"] else "inf"
        print(
            f"{name:10} {eps:>8} {r['accuracy']:9.4f} {r['macro_f1']:9.4f} "
            f"{r['epochs']:7d} {r['train_seconds']:8.1f}"
        )
    path = write_result(
        "dp_banking",
        {
            "task": "banking77-demo-12-intents",
            "rows": rows,
            "target_epsilon": args.epsilon,
            "results": results,
            "machine": machine(),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
