"""WNUT-17 emerging entities with llmos: MiniLM + LoRA token classification, entity-level
precision, recall and F1 on the test split (seqeval, conlleval rules).

Imports the CoNLL files as datasets and trains through the SDK exactly as
`llmos train examples/wnut17_lora.yaml` would, prints a table and writes
`benchmarks/results/wnut17.json`.

    python benchmarks/wnut17.py                 # train 3,394 / dev 1,009 / test 1,287 sentences
    python benchmarks/wnut17.py --epochs 1 --train-rows 300   # a quick check
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # the machine is shared; set it higher on your own
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_DATA, machine, write_result

PUBLISHED = "BERTweet about 52 entity-level F1 on test (shared/data README)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--method", default="lora")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--head-lr", type=float, default=None)
    parser.add_argument("--train-rows", type=int, default=None, help="First N training sentences.")
    args = parser.parse_args()

    import pandas as pd

    from llmos import Workspace
    from llmos.cli.output import RichProgress
    from llmos.store.conll import read_conll

    folder = SHARED_DATA / "wnut17"
    if not folder.exists():
        raise SystemExit(f"{folder} not found (see ../shared/data/README.md)")
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        train_file = folder / "wnut17train.conll"
        if args.train_rows:
            text = train_file.read_text(encoding="utf-8")
            frame: pd.DataFrame = read_conll(train_file, text).head(args.train_rows)
            train_file = Path(tmp) / "train.jsonl"
            frame.to_json(train_file, orient="records", lines=True)
        train = ws.import_dataset(train_file, "wnut17-train").dataset
        dev = ws.import_dataset(folder / "emerging.dev.conll", "wnut17-dev").dataset
        test = ws.import_dataset(folder / "emerging.test.annotated", "wnut17-test", format="conll").dataset
        print(f"wnut17: {train.num_rows} train / {dev.num_rows} dev / {test.num_rows} test sentences")
        spec = {
            "name": f"wnut17-{args.method}",
            "model": "minilm",
            "method": args.method,
            "data": {"train": train.ref, "validation": dev.ref, "test": test.ref},
            "inputs": [{"name": "tokens", "type": "tokens"}],
            "outputs": [{"name": "tags", "type": "tags"}],
            "train": {"epochs": args.epochs, "batch_size": 32, "seed": 42},
        }
        for key, value in (("lr", args.lr), ("head_lr", args.head_lr)):
            if value is not None:
                spec["train"][key] = value  # type: ignore[index]
        started = time.perf_counter()
        with RichProgress() as progress:
            outcome = ws.train(spec, progress)
        total = time.perf_counter() - started
    m = outcome.metrics
    print(f"\n{'entity type':<16} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}")
    for kind, v in m["per_class"].items():
        print(f"{kind:<16} {v['precision']:>9.3f} {v['recall']:>7.3f} {v['f1']:>7.3f} {v['support']:>8}")
    print(
        f"{'all (micro)':<16} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>7.3f}\n"
        f"train {m['train_seconds']:.0f}s, {m['train_samples_per_second']:.1f} sentences/s; "
        f"{m['trainable_parameters']:,} trainable parameters; published: {PUBLISHED}"
    )
    result = {
        "task": "token-classification",
        "rows": {"train": train.num_rows, "validation": dev.num_rows, "test": test.num_rows},
        "epochs": args.epochs,
        "machine": machine(),
        "metrics": {k: v for k, v in m.items()},
        "history": outcome.history,
        "total_seconds": round(total, 1),
        "published": PUBLISHED,
        "spec": spec,
    }
    name = "wnut17" if not args.train_rows else f"wnut17_{args.train_rows}"
    print(f"wrote {write_result(name, result)}")


if __name__ == "__main__":
    main()
