"""Cost of encryption at rest: AES-256-GCM throughput, and the store operations it touches.

Training and serving only meet encryption where they read the store: a dataset's
Parquet copy (decrypted in memory before training or batch prediction) and a model's
files (decrypted into a private temporary folder when a server or predictor loads the
model). Requests and training steps never touch it. This measures, plain vs encrypted
workspace: storing and loading the real MiniLM folder (91 MB; plus the transformers
load that follows in a real server), and importing and loading Banking77's training set.
Writes `benchmarks/results/bench_encryption.json`.

    OMP_NUM_THREADS=1 python benchmarks/bench_encryption.py
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, SHARED_DATA, machine, minilm_path, write_result


def best(fn: Callable[[], Any], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    import shutil

    from transformers import AutoModel

    from llmos import Workspace
    from llmos.store import crypto
    from llmos.store.models import register_model

    result: dict[str, Any] = {"machine": machine()}
    data = os.urandom(64 << 20)
    key = crypto.new_key()
    enc = best(lambda: crypto.encrypt_stream(key, "blob:x", io.BytesIO(data), io.BytesIO()))
    sealed = io.BytesIO()
    crypto.encrypt_stream(key, "blob:x", io.BytesIO(data), sealed)
    dec = best(lambda: crypto.decrypt_stream(key, "blob:x", io.BytesIO(sealed.getvalue()), io.BytesIO(), "x"))
    result["aes_gcm_mb_per_s"] = {
        "encrypt": round(64 / enc * 1.048576),
        "decrypt": round(64 / dec * 1.048576),
    }

    csv = SHARED_DATA / "banking77" / "train.csv"
    if not csv.exists():
        csv = ROOT / "src" / "llmos" / "demo" / "banking_demo_train.csv"
    folder = Path(minilm_path())
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("plain", "encrypted"):
            ws = Workspace(Path(tmp) / mode)
            ws.init(encrypt=mode == "encrypted")
            start = time.perf_counter()
            ws.import_dataset(csv, "b77")
            imported = time.perf_counter() - start
            ds = ws.dataset("b77")
            from llmos.store.datasets import load_frame

            load = best(lambda ws=ws, ds=ds: load_frame(ws.store, ds))
            start = time.perf_counter()
            row = register_model(
                ws.store,
                name="minilm",
                task="text-classification",
                base_model="minilm",
                method="full",
                spec={},
                folder=folder,
                train_dataset_id=None,
                test_dataset_id=None,
                split={},
                metrics={},
                train_seconds=0.0,
            )
            stored = time.perf_counter() - start

            def materialize(ws=ws, row=row) -> Path:
                from llmos.store.models import model_folder

                dest = model_folder(ws.store, row)
                return dest

            def fresh(ws=ws, row=row) -> None:
                from llmos.store.models import model_folder

                shutil.rmtree(model_folder(ws.store, row))
                model_folder(ws.store, row)

            materialize()
            lay_out = best(fresh)
            load_model = best(lambda: AutoModel.from_pretrained(materialize()), repeat=2)
            rows[mode] = {
                "dataset_rows": ds.num_rows,
                "dataset_import_s": round(imported, 3),
                "dataset_load_s": round(load, 4),
                "minilm_store_s": round(stored, 3),
                "minilm_lay_out_s": round(lay_out, 3),
                "minilm_transformers_load_s": round(load_model, 3),
                "minilm_cold_load_s": round(lay_out + load_model, 3),
            }
            print(mode, rows[mode], flush=True)
    result["store"] = rows
    result["dataset"] = str(csv.relative_to(csv.parents[2]))
    print(result["aes_gcm_mb_per_s"])
    print(write_result("bench_encryption", result))


if __name__ == "__main__":
    main()
