"""`llmos demo`: the first-hour tour in one call, on data shipped with llmos.

Imports a 12-intent subset of Banking77 (CC BY 4.0, see `llmos/demo/NOTICE.md`), trains
MiniLM with LoRA from the bundled spec, and returns the test report and three sample
predictions.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import Any

from llmos.core.progress import Progress
from llmos.sdk.workspace import Workspace

SAMPLES = [
    "I ordered a new card two weeks ago and it still isn't here",
    "Someone stole my wallet, please block my card",
    "Can I use Google Pay with my account?",
]


def demo_files() -> Path:
    return Path(str(resources.files("llmos") / "demo"))


def run_demo(ws: Workspace, progress: Progress | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    folder = demo_files()
    train = ws.import_dataset(folder / "banking_demo_train.csv", "banking-demo-train")
    test = ws.import_dataset(folder / "banking_demo_test.csv", "banking-demo-test")
    if progress is not None:
        progress.log(
            f"datasets {train.dataset.ref} ({train.dataset.num_rows} rows) and "
            f"{test.dataset.ref} ({test.dataset.num_rows} rows)"
        )
    outcome = ws.train(folder / "spec.yaml", progress)
    predictions = ws.predict(outcome.model.ref, SAMPLES)
    return {
        "model": outcome.model.ref,
        "train": train.dataset.ref,
        "test": test.dataset.ref,
        "metrics": outcome.metrics,
        "samples": [
            {"text": t, "label": p["label"], "score": p["score"]} for t, p in zip(SAMPLES, predictions)
        ],
        "seconds": round(time.perf_counter() - started, 1),
    }
