"""CIFAR-10 subset with llmos: a small CNN trained from scratch on 2,000 images (200 per
class), test accuracy on 500, and batch prediction over the test image folder.

Runs exactly what `llmos train examples/cifar10_cnn.yaml` and
`llmos predict cifar10 --file ../shared/data/cifar10-small/test` do, prints a table and
writes `benchmarks/results/cifar10.json`.

    python benchmarks/cifar10.py              # 30 epochs
    python benchmarks/cifar10.py --epochs 2   # a quick check
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # the machine is shared; set it higher on your own
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_DATA, machine, write_result

REFERENCE = "small CNNs on the full 50k set reach 80-90%; on this 2k subset expect far less"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()

    import pandas as pd
    import yaml

    from llmos import Workspace
    from llmos.cli.output import RichProgress

    folder = SHARED_DATA / "cifar10-small"
    if not folder.exists():
        raise SystemExit(f"{folder} not found (see ../shared/data/README.md)")
    example = Path(__file__).resolve().parents[1] / "examples" / "cifar10_cnn.yaml"
    spec = yaml.safe_load(example.read_text())
    spec["train"]["epochs"] = args.epochs
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        train = ws.import_dataset(folder / "train", "cifar10-train").dataset
        test = ws.import_dataset(folder / "test", "cifar10-test").dataset
        print(f"cifar10-small: {train.num_rows} train / {test.num_rows} test images")
        with RichProgress() as progress:
            outcome = ws.train(spec, progress)
            started = time.perf_counter()
            target, count = ws.predict_file(
                outcome.model.ref, folder / "test", Path(tmp) / "predictions.csv", progress=progress
            )
            predict_seconds = time.perf_counter() - started
        predictions = pd.read_csv(target)
    truth = predictions["image"].map(lambda p: Path(p).parent.name)
    folder_accuracy = float((predictions["prediction"] == truth).mean())
    m = outcome.metrics
    print(f"\n{'class':<12} {'precision':>9} {'recall':>7} {'f1':>7}")
    for label, v in m["per_class"].items():
        print(f"{label:<12} {v['precision']:>9.3f} {v['recall']:>7.3f} {v['f1']:>7.3f}")
    print(
        f"test accuracy {100 * m['accuracy']:.2f}% (macro F1 {100 * m['macro_f1']:.2f}%), "
        f"train {m['train_seconds']:.0f}s ({m['train_samples_per_second']:.0f} images/s); "
        f"batch prediction over the folder: {count} images in {predict_seconds:.1f}s, "
        f"accuracy {100 * folder_accuracy:.2f}%"
    )
    result = {
        "task": "image-classification",
        "rows": {"train": train.num_rows, "test": test.num_rows},
        "epochs": args.epochs,
        "machine": machine(),
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "train_seconds": m["train_seconds"],
        "train_samples_per_second": m["train_samples_per_second"],
        "trainable_parameters": m["trainable_parameters"],
        "batch_prediction": {
            "images": count,
            "seconds": round(predict_seconds, 2),
            "accuracy_from_folder": round(folder_accuracy, 4),
        },
        "per_class": m["per_class"],
        "history": outcome.history,
        "reference": REFERENCE,
        "spec": spec,
    }
    print(f"wrote {write_result('cifar10', result)}")


if __name__ == "__main__":
    main()
