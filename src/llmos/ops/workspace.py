"""The local workspace itself: opening its store, creating it, the kernel on this machine,
and the in-process objects (data frames, model folders, loaded predictors) that code in
the calling process works with. These are plumbing for `llmos.Workspace` and the local
CLI, not use cases a server offers, so they are plain functions rather than operations;
each still checks the caller's permission."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmos.ops.context import Context

if TYPE_CHECKING:
    import pandas as pd

    from llmos.core.settings import Settings
    from llmos.kernel.resources import Free
    from llmos.store.db import Store
    from llmos.train.predict import Predictor


def open_store(settings: Settings) -> Store:
    from llmos.store.db import Store

    return Store(settings)


def check_database(url: str) -> None:
    """Reach and migrate the database at `url` before a workspace records it (`init --db`)."""
    from llmos.store.db import check_database as check

    check(url)


def shown_url(url: str) -> str:
    """A database URL with its password hidden, for messages and `--json`."""
    from llmos.store.db import shown_url as shown

    return shown(url)


def init_folders(ctx: Context) -> Path:
    """Create the workspace's folders (idempotent) and return its home."""
    settings = ctx.settings
    for folder in (settings.artifacts_dir, settings.runs_dir, settings.cache_dir):
        folder.mkdir(parents=True, exist_ok=True)
    return settings.home


def dataset_frame(ctx: Context, ref: str) -> pd.DataFrame:
    """A dataset version's rows as a pandas DataFrame, in this process."""
    from llmos.store.datasets import get_dataset, load_frame

    ctx.require("data:read")
    return load_frame(ctx.store, get_dataset(ctx.store, ref))


def model_path(ctx: Context, ref: str) -> Path:
    """The folder of a registered model's files (decrypted in a private folder when the
    workspace is encrypted)."""
    from llmos.store.models import get_model, model_folder

    ctx.require("models:read")
    return model_folder(ctx.store, get_model(ctx.store, ref))


def predictor(ctx: Context, ref: str) -> Predictor:
    """The loaded predictor of a registered model, kept for the next call."""
    from llmos.ops.predict import loaded_predictor

    ctx.require("predict")
    return loaded_predictor(ctx.store, ref)


def prediction_frame(ctx: Context, ref: str) -> Any:
    """A prediction set's rows as a pandas DataFrame."""
    from llmos.store.predictions import get_predictions, load_predictions

    ctx.require("jobs:read")
    return load_predictions(ctx.store, get_predictions(ctx.store, ref))


def machine_capacity(cpus: int | None = None, gpus: int | None = None, memory_mb: int | None = None) -> Free:
    """What this machine offers the kernel (all of it unless limited)."""
    from llmos.kernel.resources import machine_capacity as capacity

    return capacity(cpus, gpus, memory_mb)


def run_kernel(
    ctx: Context,
    cpus: int | None = None,
    gpus: int | None = None,
    memory_mb: int | None = None,
    until_idle: bool = False,
) -> None:
    """Run the scheduler in this process (`llmos kernel start`)."""
    from llmos.kernel.scheduler import Scheduler

    ctx.require("jobs:write")
    Scheduler(ctx.store, machine_capacity(cpus, gpus, memory_mb)).run(until_idle=until_idle)


def kernel_pid(ctx: Context) -> int | None:
    """The process id of this workspace's running scheduler, if any."""
    from llmos.kernel.scheduler import kernel_pid as pid

    return pid(ctx.settings)
