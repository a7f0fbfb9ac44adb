"""Multimodal fusion on CIFAR-10 photos and claim texts: does the photo show what the
claim says? Neither input alone can tell; the fused model can.

Each CIFAR image of 4 vehicle and 4 animal classes gets a claim text from templates naming a vehicle
or an animal, chosen independently of the photo; the label is `consistent` when both
name the same kind and `suspicious` otherwise. So the photo alone and the text alone
carry no information about the label (both single-input models sit at chance), and
the fused model is as good as its image encoder's vehicle/animal call.

Trains, with one seed: image only (small CNN), text only (MiniLM, frozen), and image +
text with each combiner (`concat`, `gated`, `transformer`); prints a table and writes
`benchmarks/results/multimodal_cifar.json`.

    python benchmarks/multimodal_cifar.py                    # 8 epochs per model
    python benchmarks/multimodal_cifar.py --csv-dir DIR      # only write claims-{train,test}.csv
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # the machine is shared; set it higher on your own
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_DATA, machine, write_result

# four classes of each kind, so that vehicles and animals are equally common and the
# claim text alone says nothing about the label
VEHICLES = {"airplane", "automobile", "ship", "truck"}
ANIMALS = {"bird", "cat", "dog", "horse"}
NOUNS = {
    "vehicle": ["car", "truck", "boat", "plane", "van", "lorry", "ship", "jet"],
    "animal": ["dog", "cat", "horse", "bird", "pony", "parrot", "puppy", "kitten"],
}
TEMPLATES = [
    "Claim for my {noun}, damaged {when}; photo attached.",
    "Please review: the {noun} was hurt {when}.",
    "Photo of our {noun} after what happened {when}.",
    "Insurance request, {noun} affected {when}, see picture.",
]
WHEN = ["last night", "on Monday", "during the storm", "this morning", "at the weekend"]


def claims(split: str, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for class_dir in sorted((SHARED_DATA / "cifar10-small" / split).iterdir()):
        if class_dir.name not in VEHICLES | ANIMALS:
            continue
        shown = "vehicle" if class_dir.name in VEHICLES else "animal"
        for image in sorted(class_dir.glob("*.jpg")):
            claimed = rng.choice(["vehicle", "animal"])
            text = rng.choice(TEMPLATES).format(noun=rng.choice(NOUNS[claimed]), when=rng.choice(WHEN))
            label = "consistent" if claimed == shown else "suspicious"
            rows.append({"photo": str(image), "claim": text, "label": label})
    rng.shuffle(rows)
    return rows


def write_csvs(folder: Path) -> tuple[Path, Path]:
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, seed in (("train", 1), ("test", 2)):
        path = folder / f"claims-{split}.csv"
        pd.DataFrame(claims(split, seed)).to_csv(path, index=False)
        paths.append(path)
    return paths[0], paths[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--combiners", nargs="+", default=["concat", "gated", "transformer"])
    parser.add_argument("--csv-dir", type=Path, default=None, help="Only write the CSV files there.")
    args = parser.parse_args()
    if not (SHARED_DATA / "cifar10-small").exists():
        raise SystemExit(f"{SHARED_DATA / 'cifar10-small'} not found (see ../shared/data/README.md)")
    if args.csv_dir is not None:
        print("wrote", *write_csvs(args.csv_dir))
        return

    from llmos import Workspace
    from llmos.cli.output import RichProgress

    image = {"name": "photo", "type": "image", "size": 32, "encoder": {"channels": [32, 64, 128]}}
    text = {"name": "claim", "max_length": 32}  # the spec-wide method, frozen, applies
    runs = {"image only": ([image], None), "text only": ([text], None)}
    for kind in args.combiners:
        runs[f"image + text, {kind}"] = ([image, text], {"type": kind, "hidden": 128, "heads": 4})
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        train_csv, test_csv = write_csvs(Path(tmp))
        ws.import_dataset(train_csv, "claims")
        ws.import_dataset(test_csv, "claims-test")
        for i, (title, (inputs, combiner)) in enumerate(runs.items()):
            spec = {
                "name": f"claims-{i}",
                "model": "minilm",
                "method": "frozen",
                "data": {"train": "claims", "test": "claims-test"},
                "inputs": inputs,
                "outputs": [{"name": "label"}],
                "train": {"epochs": args.epochs, "batch_size": 64, "head_lr": 0.003, "seed": 42},
            }
            if combiner:
                spec["combiner"] = combiner
            with RichProgress() as progress:
                outcome = ws.train(spec, progress)
            m = outcome.metrics
            results[title] = {
                "accuracy": m["accuracy"],
                "macro_f1": m["macro_f1"],
                "train_seconds": m["train_seconds"],
                "spec": spec,
            }
            print(f"{title}: accuracy {100 * m['accuracy']:.2f}%", flush=True)
    print(f"\n{'model':<28} {'accuracy':>9} {'train s':>8}")
    for title, r in results.items():
        print(f"{title:<28} {100 * r['accuracy']:>8.2f}% {r['train_seconds']:>8.0f}")
    data = {
        "epochs": args.epochs,
        "rows": {"train": 1600, "test": 400},
        "machine": machine(),
        "runs": results,
    }
    print(f"wrote {write_result('multimodal_cifar', data)}")


if __name__ == "__main__":
    main()
