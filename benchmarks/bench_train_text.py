"""llmos against a plain Hugging Face Trainer script, same run, same data and settings.

Fine-tunes all-MiniLM-L6-v2 (full fine-tuning) on a stratified Banking77 subset four
ways, one after another in this process, with the same epochs, learning rate, batch
size, warm-up, weight decay and max length:

1. `llmos`: `Workspace.train` with its defaults for the model (mean pooling, separate
   head learning rate, length-grouped dynamic padding);
2. `hf-dynamic`: `AutoModelForSequenceClassification` + `Trainer` with
   `DataCollatorWithPadding` (dynamic padding), the recipe the HF docs teach;
3. `hf-pad128`: the same with every example padded to 128 tokens, as most tutorials do;
4. `hf-grouped`: `hf-dynamic` plus `train_sampling_strategy="group_by_length"`, the opt-in for
   length-grouped batches: what an HF user who knows the trick gets (not a target).

Prints a table with training wall time, samples/s and test accuracy, and the wall-time
ratios (HF / llmos); writes `benchmarks/results/bench_train_text.json`.

    python benchmarks/bench_train_text.py [--train-rows 2000] [--test-rows 1000] [--skip-pad128]
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

from common import banking77, banking77_workspace, machine, minilm_path, stratified_subset, write_result


def run_llmos(train, test, args) -> dict[str, Any]:

    with tempfile.TemporaryDirectory() as tmp:
        ws = banking77_workspace(Path(tmp), train, test)
        spec = {
            "name": "bench",
            "model": "minilm",
            "method": "full",
            "data": {"train": "b77-train", "test": "b77-test"},
            "inputs": [{"name": "text", "max_length": 128}],
            "outputs": [{"name": "category"}],
            "train": {
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "warmup": args.warmup,
                "weight_decay": 0.01,
                "seed": args.seed,
            },
        }
        outcome = ws.train(spec)
        m = outcome.metrics
        return {
            "train_seconds": m["train_seconds"],
            "samples_per_second": m["train_samples_per_second"],
            "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"],
        }


def run_hf(train, test, args, pad_to: int | None, group_by_length: bool = False) -> dict[str, Any]:
    import numpy as np
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        default_data_collator,
    )

    labels = sorted(train["category"].unique())
    index = {label: i for i, label in enumerate(labels)}
    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    padding = "max_length" if pad_to else False

    def encode(frame):
        enc = tokenizer(frame["text"].tolist(), truncation=True, max_length=128, padding=padding)
        return [
            {"input_ids": ids, "attention_mask": mask, "labels": index[c]}
            for ids, mask, c in zip(enc["input_ids"], enc["attention_mask"], frame["category"])
        ]

    torch.manual_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels))
    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(
            output_dir=out,
            num_train_epochs=args.epochs,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=128,
            learning_rate=args.lr,
            warmup_steps=args.warmup,  # a float below 1 is a ratio of the total steps
            weight_decay=0.01,
            seed=args.seed,
            train_sampling_strategy="group_by_length" if group_by_length else "random",
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            report_to=[],
            disable_tqdm=True,
            use_cpu=not torch.cuda.is_available(),
        )
        collator = default_data_collator if pad_to else DataCollatorWithPadding(tokenizer)
        trainer = Trainer(model=model, args=targs, train_dataset=encode(train), data_collator=collator)
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
        pred = trainer.predict(encode(test))
    y_pred = np.asarray(pred.predictions).argmax(-1)
    y_true = np.array([index[c] for c in test["category"]])
    from sklearn.metrics import f1_score

    return {
        "train_seconds": round(seconds, 2),
        "samples_per_second": round(len(train) * args.epochs / seconds, 2),
        "accuracy": round(float((y_pred == y_true).mean()), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, average="macro")), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--test-rows", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup", type=float, default=0.06)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-pad128", action="store_true")
    args = parser.parse_args()

    from llmos.core.logging import quiet_third_party

    quiet_third_party()
    train_all, test_all = banking77()
    train = stratified_subset(train_all, args.train_rows, args.seed)
    test = stratified_subset(test_all, args.test_rows, args.seed)
    print(
        f"Banking77 subset: {len(train)} train / {len(test)} test rows, "
        f"{train['category'].nunique()} intents; {args.epochs} epochs, lr {args.lr}, "
        f"batch {args.batch_size}",
        flush=True,
    )
    runs: dict[str, dict[str, Any]] = {}
    for name, fn in (
        ("llmos", lambda: run_llmos(train, test, args)),
        ("hf-dynamic", lambda: run_hf(train, test, args, None)),
        ("hf-pad128", lambda: run_hf(train, test, args, 128)),
        ("hf-grouped", lambda: run_hf(train, test, args, None, group_by_length=True)),
    ):
        if name == "hf-pad128" and args.skip_pad128:
            continue
        print(f"running {name} ...", flush=True)
        runs[name] = fn()
        print(f"  {runs[name]}", flush=True)

    base = runs["llmos"]["train_seconds"]
    print(f"\n{'run':<12} {'train s':>9} {'samples/s':>10} {'accuracy':>9} {'macro F1':>9} {'vs llmos':>9}")
    for name, r in runs.items():
        ratio = r["train_seconds"] / base
        r["time_ratio_vs_llmos"] = round(ratio, 2)
        print(
            f"{name:<12} {r['train_seconds']:>9.1f} {r['samples_per_second']:>10.1f} "
            f"{100 * r['accuracy']:>8.2f}% {100 * r['macro_f1']:>8.2f}% {ratio:>8.2f}x"
        )
    summary = {
        "speedup_vs_hf_dynamic": runs["hf-dynamic"]["time_ratio_vs_llmos"],
        "accuracy_gap_vs_hf_dynamic_points": round(
            100 * (runs["llmos"]["accuracy"] - runs["hf-dynamic"]["accuracy"]), 2
        ),
    }
    if "hf-pad128" in runs:
        summary["speedup_vs_hf_pad128"] = runs["hf-pad128"]["time_ratio_vs_llmos"]
    summary["speedup_vs_hf_grouped"] = runs["hf-grouped"]["time_ratio_vs_llmos"]
    print(
        f"\nllmos is {summary['speedup_vs_hf_dynamic']:.2f}x faster than the HF Trainer with dynamic "
        f"padding (target 1.3x)"
        + (
            f" and {summary['speedup_vs_hf_pad128']:.2f}x faster than padding to 128 (target 3x)"
            if "hf-pad128" in runs
            else ""
        )
    )
    path = write_result(
        "bench_train_text",
        {
            "settings": vars(args),
            "rows": {"train": len(train), "test": len(test)},
            "machine": machine(),
            "runs": runs,
            "summary": summary,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
