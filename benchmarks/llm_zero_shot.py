"""SmolLM2-135M-Instruct as a classifier without training (zero- and few-shot), next to
MiniLM + LoRA fine-tuned on the same data, on real data sets of `../shared/data`.

- `banking77-10`: 10 Banking77 intents (their train rows as the few-shot pool and
  fine-tuning data, their test rows for evaluation);
- `sst2`: SST-2 dev (872 rows); few-shot examples and fine-tuning from 2,000 stratified
  train rows.

Every run goes through `Workspace.train` as a user's spec would. Prints a table, writes
`benchmarks/results/llm_zero_shot.json`.

    python benchmarks/llm_zero_shot.py                     # both sets, all three methods
    python benchmarks/llm_zero_shot.py --sets sst2 --methods zero-shot
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

import pandas as pd

from common import SHARED_DATA, banking77, machine, write_result

INTENTS = [
    "age_limit",
    "apple_pay_or_google_pay",
    "atm_support",
    "card_arrival",
    "change_pin",
    "exchange_rate",
    "lost_or_stolen_card",
    "terminate_account",
    "top_up_failed",
    "verify_my_identity",
]


def load_set(name: str, tmp: Path) -> tuple[Path, Path, str, str, dict[str, str] | None]:
    """Train and test CSV files, text and label columns, label words for the LLM."""
    if name == "banking77-10":
        train, test = banking77()
        train, test = (f[f["category"].isin(INTENTS)] for f in (train, test))
        label, words = "category", None
    else:
        folder = SHARED_DATA / "sst2"
        if not folder.exists():
            raise SystemExit(f"{folder} not found (see ../shared/data/README.md)")
        from sklearn.model_selection import train_test_split

        train = pd.read_csv(folder / "train.tsv", sep="\t").rename(columns={"sentence": "text"})
        train, _ = train_test_split(train, train_size=2000, random_state=0, stratify=train["label"])
        test = pd.read_csv(folder / "dev.tsv", sep="\t").rename(columns={"content": "text"})
        label, words = "label", {"0": "negative", "1": "positive"}
    paths = tmp / f"{name}-train.csv", tmp / f"{name}-test.csv"
    train.to_csv(paths[0], index=False)
    test.to_csv(paths[1], index=False)
    return paths[0], paths[1], "text", label, words


def method_config(method: str, words: dict[str, str] | None) -> Any:
    if method == "lora":
        return "lora"
    config: dict[str, Any] = {"type": method, "labels": words}
    if method == "few-shot":
        config["k"] = 4
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["banking77-10", "sst2"])
    parser.add_argument("--methods", nargs="+", default=["zero-shot", "few-shot", "lora"])
    args = parser.parse_args()

    from llmos import Workspace
    from llmos.cli.output import RichProgress

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        for name in args.sets:
            train_path, test_path, text, label, words = load_set(name, Path(tmp))
            train = ws.import_dataset(train_path, f"{name}-train", label=label).dataset
            test = ws.import_dataset(test_path, f"{name}-test", label=label).dataset
            print(f"{name}: {train.num_rows} train / {test.num_rows} test rows", flush=True)
            for method in args.methods:
                spec = {
                    "name": f"{name}-{method}",
                    "model": "minilm" if method == "lora" else "smollm2-135m",
                    "method": method_config(method, words),
                    "data": {"train": train.ref, "test": test.ref},
                    "inputs": [{"name": text}],
                    "outputs": [{"name": label}],
                    "train": {"epochs": 3, "seed": 42},
                }
                started = time.perf_counter()
                with RichProgress() as progress:
                    outcome = ws.train(spec, progress)
                m = outcome.metrics
                results.setdefault(name, {})[method] = {
                    "model": "MiniLM + LoRA (fine-tuned)" if method == "lora" else "SmolLM2-135M-Instruct",
                    "accuracy": m["accuracy"],
                    "macro_f1": m["macro_f1"],
                    "seconds": round(time.perf_counter() - started, 1),
                    "test_rows": test.num_rows,
                    "train_rows": train.num_rows,
                }
                print(f"{name} {method}: accuracy {100 * m['accuracy']:.2f}%", flush=True)
    print(f"\n{'set':<14} {'method':<10} {'model':<28} {'accuracy':>9} {'macro F1':>9} {'seconds':>8}")
    for name, runs in results.items():
        for method, r in runs.items():
            print(
                f"{name:<14} {method:<10} {r['model']:<28} {100 * r['accuracy']:>8.2f}% "
                f"{100 * r['macro_f1']:>8.2f}% {r['seconds']:>8.0f}"
            )
    path = write_result("llm_zero_shot", {"machine": machine(), "intents": INTENTS, "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
