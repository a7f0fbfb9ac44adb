"""llmos on the real data sets of `../shared/data`: MiniLM + LoRA and MiniLM full
fine-tuning, llmos defaults otherwise.

Runs `llmos train` through the SDK exactly as a user would, prints a table and writes
`benchmarks/results/<dataset>_<rows>.json`.

    python benchmarks/real_data.py banking77               # full train set; targets 88% / 90%
    python benchmarks/real_data.py sst2 --train-rows 10000 # a stratified subset of SST-2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd

from common import SHARED_DATA, machine, write_result


@dataclass(frozen=True)
class RealSet:
    folder: str
    train: str
    test: str
    text: str
    label: str
    targets: dict[str, float]
    train_renames: tuple[tuple[str, str], ...] = ()  # column names that differ in train


SETS = {
    "banking77": RealSet(
        "banking77", "train.csv", "test.csv", "text", "category", {"lora": 0.88, "full": 0.90}
    ),
    # SST-2's train file calls the text column `sentence`, its dev file `content`
    "sst2": RealSet("sst2", "train.tsv", "dev.tsv", "content", "label", {}, (("sentence", "content"),)),
}


def train_copy(path: Path, rows: int | None, real: RealSet, out: Path) -> Path:
    """The train file itself, or a copy with renamed columns and/or a stratified sample."""
    if rows is None and not real.train_renames:
        return path
    from sklearn.model_selection import train_test_split

    sep = "\t" if path.suffix == ".tsv" else ","
    frame = pd.read_csv(path, sep=sep).rename(columns=dict(real.train_renames))
    if rows is not None and rows < len(frame):
        frame, _ = train_test_split(frame, train_size=rows, random_state=0, stratify=frame[real.label])
    frame.to_csv(out, sep=sep, index=False)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=sorted(SETS))
    parser.add_argument("--methods", nargs="+", default=["lora", "full"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-rows", type=int, default=None, help="Stratified subset of train.")
    args = parser.parse_args()

    from llmos import Workspace
    from llmos.cli.output import RichProgress

    real = SETS[args.dataset]
    folder = SHARED_DATA / real.folder
    if not folder.exists():
        raise SystemExit(f"{folder} not found (see ../shared/data/README.md)")
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        train_file = train_copy(folder / real.train, args.train_rows, real, Path(tmp) / real.train)
        train = ws.import_dataset(train_file, f"{args.dataset}-train", label=real.label).dataset
        test = ws.import_dataset(folder / real.test, f"{args.dataset}-test", label=real.label).dataset
        print(f"{args.dataset}: {train.num_rows} train / {test.num_rows} test rows", flush=True)
        for method in args.methods:
            spec = {
                "name": f"{args.dataset}-{method}",
                "model": "minilm",
                "method": method,
                "data": {"train": train.ref, "test": test.ref},
                "inputs": [{"name": real.text}],
                "outputs": [{"name": real.label}],
                "train": {"epochs": args.epochs, "batch_size": 32, "seed": 42},
            }
            started = time.perf_counter()
            with RichProgress() as progress:
                outcome = ws.train(spec, progress)
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
                "target_accuracy": real.targets.get(method),
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
    name = f"{args.dataset}_{args.train_rows or 'full'}"
    rows = {"train": train.num_rows, "test": test.num_rows}
    path = write_result(name, {"epochs": args.epochs, "rows": rows, "machine": machine(), "runs": runs})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
