"""The Ray backend: training under Ray Train (TorchTrainer, DDP) with the same loop as a
local run, and batch prediction on Ray Data with the same predictor.

Training: every Ray Train worker builds the same model, wraps it in DDP (gloo on CPU,
NCCL on GPUs), takes an equal shard of the training rows (padded by repeating rows, as
torch's DistributedSampler does, so that every worker runs the same number of steps and
no all-reduce waits forever) and calls `loop.fit`. Each worker validates on the whole
validation set, so early-stopping decisions agree. Rank 0 reports the trained weights
as a Ray checkpoint; the driver loads them into its own model and evaluates, registers
and reports exactly as after a local run. The effective batch is `batch_size x workers`.

Prediction: the dataset is cut into blocks, each predicted by one of `workers` actors
that load the model once; rows are put back in input order by a row-number column.

Where the run keeps its checkpoints and results (Ray Train's `storage_path`): a folder on
one node is not there for a worker on another node, so on a workspace whose artifacts are
in S3 they go to the same bucket (`PREFIX/ray/RUN`, through pyarrow's S3 filesystem, the
one Ray Train writes with), and every node uploads and the driver downloads there. An
encrypted workspace keeps them in the run folder instead (Ray writes them in plaintext,
and the bucket holds only ciphertext), so it trains on one node or a shared folder.
Measured on three Ray nodes in network namespaces of one machine (tests/train/
test_ray_cluster.py): the two DDP workers on two nodes reach the local accuracy.

Checkpoint resume is a local-backend feature: a Ray run that fails is retried from its
start (Ray Train's own failure handling restarts lost workers within a run).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from llmos.core.errors import JobError, TrainingError
from llmos.core.progress import Progress
from llmos.kernel.ray_cluster import connect
from llmos.modalities.base import OutputDriver
from llmos.spec.schema import BackendConfig
from llmos.store.db import Store
from llmos.train.loop import Collate, LoopResult, LoopSettings, Rows, fit, load_trainable, seed_everything

ROW = "__llmos_row__"


def shard_rows(rows: Rows, rank: int, world: int) -> Rows:
    """Rank `rank`'s equal share of `rows` (padded by repeating the first rows)."""
    per = math.ceil(len(rows) / world)
    order = list(range(len(rows))) + list(range(per * world - len(rows)))
    idx = order[rank::world]
    targets = None if rows.targets is None else rows.targets[idx]
    return Rows([rows.features[i] for i in idx], [rows.lengths[i] for i in idx], targets)


def _unwrap(model: nn.Module) -> nn.Module:
    inner = getattr(model, "module", model)  # DDP keeps the model as `.module`
    assert isinstance(inner, nn.Module)
    return inner


def _worker_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: the local loop on a shard, under DDP."""
    import ray.train
    from ray.train.torch import get_device, prepare_model

    from llmos.train.device import Placement

    torch.set_num_threads(config["threads"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    settings: LoopSettings = config["settings"]
    seed_everything(settings.seed)
    model = prepare_model(config["build"](), parallel_strategy_kwargs={"find_unused_parameters": True})
    device = get_device()
    placement = Placement(device, torch.bfloat16 if device.type == "cuda" else None)
    shard = shard_rows(config["train"], rank, world)
    result = fit(model, config["collate"], config["output"], shard, settings, placement, config["validation"])
    nodes: list[Any] = [None] * world  # where each rank ran, for the run's log
    torch.distributed.all_gather_object(nodes, ray.util.get_node_ip_address())
    metrics = {
        "nodes": json.dumps(nodes),
        "history": json.dumps(result.history),
        "steps": result.steps,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "train_seconds": result.train_seconds,
        "samples_per_second": result.samples_per_second * world,
    }
    if rank != 0:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as folder:
        trainable = {n: p.detach().cpu() for n, p in _unwrap(model).named_parameters() if p.requires_grad}
        torch.save(trainable, Path(folder) / "trainable.pt")
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))


def run_storage(store: Store | None, run_dir: Path) -> tuple[str, Any]:
    """Ray Train's (`storage_path`, `storage_filesystem`) for a run: the workspace's S3
    bucket when its artifacts are there and not encrypted, else the run folder."""
    from llmos.store.s3 import S3Artifacts

    artifacts = None if store is None else store.artifacts
    if not isinstance(artifacts, S3Artifacts) or artifacts.keyring is not None:
        return str((run_dir / "ray").resolve()), None
    from urllib.parse import urlsplit

    import pyarrow.fs

    options: dict[str, Any] = {
        "region": os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1",
    }
    if artifacts.endpoint:
        endpoint = urlsplit(artifacts.endpoint)
        options.update(endpoint_override=endpoint.netloc, scheme=endpoint.scheme or "https")
    if os.environ.get("AWS_ACCESS_KEY_ID"):  # else every node uses its own credential chain
        options.update(
            access_key=os.environ["AWS_ACCESS_KEY_ID"],
            secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
            session_token=os.environ.get("AWS_SESSION_TOKEN"),
        )
    path = "/".join(part for part in (artifacts.bucket, artifacts.prefix, "ray", run_dir.name) if part)
    return path, pyarrow.fs.S3FileSystem(**options)


def ray_fit(
    model: nn.Module,
    build: Callable[[], nn.Module],
    collate: Collate,
    output: OutputDriver,
    train: Rows,
    settings: LoopSettings,
    backend: BackendConfig,
    run_dir: Path,
    validation: Rows | None = None,
    progress: Progress | None = None,
    store: Store | None = None,
) -> LoopResult:
    """Train `model` in place on a Ray cluster; `build` makes the same model on workers.
    Checkpoints and results go where `run_storage` says for `store`'s workspace."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    connect(backend.address, backend.workers * backend.cpus_per_worker, backend.connect_timeout)
    if progress is not None:
        progress.log(
            f"training on Ray: {backend.workers} workers x {backend.cpus_per_worker} cpu"
            + (f", {backend.gpus_per_worker} gpu" if backend.gpus_per_worker else "")
            + f" (DDP, {'nccl' if backend.gpus_per_worker else 'gloo'})"
        )
    storage_path, filesystem = run_storage(store, run_dir)
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={
            "build": build,
            "collate": collate,
            "output": output,
            "train": train,
            "validation": validation,
            "settings": settings,
            "threads": backend.cpus_per_worker,
        },
        torch_config=TorchConfig(backend="nccl" if backend.gpus_per_worker else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=backend.workers,
            use_gpu=backend.gpus_per_worker > 0,
            resources_per_worker={"CPU": backend.cpus_per_worker, "GPU": backend.gpus_per_worker},
        ),
        run_config=RunConfig(name="train", storage_path=storage_path, storage_filesystem=filesystem),
    )
    try:
        outcome = trainer.fit()
    except Exception as exc:  # Ray wraps the worker's error; keep its first line
        text = str(exc).strip()
        raise TrainingError(
            f"Ray training failed: {text.splitlines()[-1] if text else type(exc).__name__}"
        ) from exc
    if outcome.checkpoint is None:
        raise TrainingError("Ray training finished without reporting the trained weights")
    with outcome.checkpoint.as_directory() as folder:
        load_trainable(model, torch.load(Path(folder) / "trainable.pt", map_location="cpu"))
    m = outcome.metrics or {}
    if progress is not None:
        where = "s3://" + storage_path if filesystem is not None else storage_path
        nodes = ", ".join(json.loads(m["nodes"]))
        progress.log(f"Ray Train ranks ran on nodes {nodes}; checkpoint in {where}")
    model.eval()
    return LoopResult(
        history=json.loads(m["history"]),
        best_epoch=int(m["best_epoch"]),
        stopped_early=bool(m["stopped_early"]),
        train_seconds=float(m["train_seconds"]),
        samples_per_second=float(m["samples_per_second"]),
        steps=int(m["steps"]),
    )


class _PredictBatch:
    """A Ray Data actor: loads the model once, predicts pandas batches."""

    def __init__(self, folder: str, artifacts: str, column: str | None, threads: int) -> None:
        from llmos.train.predict import Predictor

        torch.set_num_threads(threads)
        self.predictor = Predictor.from_folder(Path(folder), Path(artifacts))
        self.column = column

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return self.predictor.predict_frame(batch, self.column)


def ray_predict_frame(
    folder: Path,
    artifacts_dir: Path,
    frame: pd.DataFrame,
    column: str | None,
    backend: BackendConfig,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """`Predictor.predict_frame` over `frame`, spread over Ray Data actors."""
    ray = connect(backend.address, backend.workers * backend.cpus_per_worker, backend.connect_timeout)
    if progress is not None:
        progress.log(f"predicting {len(frame)} rows on Ray Data with {backend.workers} actors")
    blocks = max(1, min(len(frame), backend.workers * 4))
    step = math.ceil(len(frame) / blocks)
    indexed = frame.assign(**{ROW: range(len(frame))})
    parts = [indexed.iloc[i : i + step] for i in range(0, len(indexed), step)]
    try:
        predicted = (
            ray.data.from_pandas(parts)
            .map_batches(
                _PredictBatch,
                fn_constructor_kwargs={
                    "folder": str(folder),
                    "artifacts": str(artifacts_dir),
                    "column": column,
                    "threads": backend.cpus_per_worker,
                },
                batch_format="pandas",
                batch_size=None,
                concurrency=backend.workers,
                num_cpus=backend.cpus_per_worker,
                num_gpus=backend.gpus_per_worker,
            )
            .to_pandas()
        )
    except Exception as exc:
        text = str(exc).strip()
        raise JobError(
            f"Ray Data prediction failed: {text.splitlines()[-1] if text else type(exc).__name__}"
        ) from exc
    ordered = predicted.sort_values(ROW).drop(columns=ROW).reset_index(drop=True)
    return ordered.astype({c: frame[c].dtype for c in frame.columns}, errors="ignore")
