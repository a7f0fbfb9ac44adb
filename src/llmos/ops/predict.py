"""In-process use of registered models: predictions for rows, metrics on a dataset
version, and the prediction sets that batch-prediction jobs register.

`predict` and `evaluate` load the model in the calling process and keep it (a small
cache per workspace, most recently used first), so a server answers repeated
`POST /v1/registry/models/{ref}/predict` calls without reloading. Over HTTP an
evaluation runs as a job instead (`submit_eval`, `POST /v1/jobs` with kind `eval`): it
takes as long as the dataset is large, and a job can be followed, cancelled and retried.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from llmos.core.errors import DataError, NotFoundError, UsageError
from llmos.core.progress import Progress
from llmos.core.util import atomic_path
from llmos.ops.context import Context
from llmos.ops.registry import operation
from llmos.ops.results import Result, Timestamp
from llmos.spec.tasks import task_rules

if TYPE_CHECKING:
    import pandas as pd

    from llmos.store.db import Store
    from llmos.train.predict import Predictor

CACHE_SIZE = 8
_cache: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
_lock = threading.Lock()


def loaded_predictor(store: Store, ref: str, optimize: str | None = None) -> Predictor:
    """The predictor of registered model `ref` (NAME or NAME@V), loaded once per process;
    with `optimize` (int8, onnx), that faster copy of it (cached apart)."""
    from llmos.store.models import get_model, model_folder
    from llmos.train.predict import Predictor

    row = get_model(store, ref)
    if task_rules(row.task).generates:
        raise UsageError(f"{row.ref} is a generation model: use `llmos generate` or `llmos chat`")
    key = (str(store.settings.home), row.ref, optimize or "")
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        folder = model_folder(store, row)
        predictor = Predictor.from_folder(folder, store.settings.artifacts_dir, optimize=optimize)
        _cache[key] = predictor
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        return predictor


class Predictions(Result):
    model: str = Field(description="NAME@V of the model that answered")
    predictions: list[dict[str, Any]] = Field(
        description="One per input: label, score and probabilities (or tags, or a value)"
    )


class Evaluation(Result):
    model: str
    data: str
    optimize: str | None = None
    metrics: dict[str, Any]


class PredictionSetInfo(Result):
    ref: str
    name: str
    version: int
    rows: int
    columns: list[Any]
    model_id: int
    dataset_id: int
    job_id: int | None = None
    artifact: str
    created_at: Timestamp


@operation("predict")
def predict(
    ctx: Context, model: str, inputs: list[Any], progress: Progress | None = None, explain: bool = False
) -> Predictions:
    """Predictions of a registered model for texts (or image paths, ...) of a single-input
    model, or for rows given as dicts of column values (any model). With `explain` (text
    classifiers), each prediction has an `explanation`: the label explained and a score per
    token (integrated gradients; positive scores pushed towards the label)."""
    from llmos.store.models import get_model

    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) and not hasattr(inputs, "columns"):
        raise UsageError("inputs: give a list of texts or of rows (dicts of column values)")
    if len(inputs) == 0:
        raise UsageError("inputs: give at least one text or row")
    ref = get_model(ctx.store, model).ref
    predictor = loaded_predictor(ctx.store, ref)
    if not explain:
        return Predictions(model=ref, predictions=predictor.predict(inputs, progress))
    from llmos.train.explain import check_explainable
    from llmos.train.explain import explain as explain_rows

    check_explainable(predictor, ref)
    rows = predictor.predict(inputs, progress)
    for row, explanation in zip(rows, explain_rows(predictor, inputs)):
        row["explanation"] = explanation
    return Predictions(model=ref, predictions=rows)


@operation("predict", deployment="deployment")
def predict_deployment(
    ctx: Context, deployment: str, inputs: list[Any], progress: Progress | None = None
) -> Predictions:
    """Predictions of what deployment `deployment` serves: its pinned model version, run
    the way the deployment runs it (its `--optimize`, or by default the ONNX Runtime copy
    of a whole classifier on a CPU), so an application scoring through a deployment gets
    the server's answers at its speed."""
    from llmos.serve.targets import resolve_target
    from llmos.store.deployments import DEPLOYMENT_KINDS, get_deployment
    from llmos.store.models import get_model

    row = get_deployment(ctx.store, deployment)
    optimize = resolve_target(ctx.store, row).optimize if DEPLOYMENT_KINDS[row.kind].labels else None
    if not optimize:
        return predict(ctx, row.model, inputs, progress)
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs:
        raise UsageError("inputs: give at least one text or row")
    ref = get_model(ctx.store, row.model).ref
    return Predictions(
        model=ref, predictions=loaded_predictor(ctx.store, ref, optimize).predict(inputs, progress)
    )


@operation("predict")
def evaluate(
    ctx: Context, model: str, data: str, optimize: str | None = None, progress: Progress | None = None
) -> Evaluation:
    """Metrics of a registered model on a dataset version, in this process; with
    `optimize` (int8, onnx), of that version, with the full-precision accuracy and the
    difference under `metrics["optimized"]`."""
    from llmos.store.datasets import get_dataset, load_frame
    from llmos.store.models import get_model
    from llmos.train.jobs import check_optimize, evaluate_model

    row = get_model(ctx.store, model)  # an unknown model is reported before an unknown dataset
    dataset = get_dataset(ctx.store, data)
    check_optimize(row, optimize)
    frame = load_frame(ctx.store, dataset)
    predictor = None if task_rules(row.task).generates else loaded_predictor(ctx.store, row.ref)
    metrics = evaluate_model(ctx.store, row, dataset, frame, optimize, progress, predictor)
    return Evaluation(model=row.ref, data=dataset.ref, optimize=optimize, metrics=metrics)


@operation("jobs:read")
def prediction_sets(ctx: Context, name: str | None = None) -> list[PredictionSetInfo]:
    """The prediction sets batch-prediction jobs registered, newest first."""
    from llmos.store.predictions import list_predictions

    return [
        PredictionSetInfo(
            ref=p.ref,
            name=p.name,
            version=p.version,
            rows=p.num_rows,
            columns=p.columns,
            model_id=p.model_id,
            dataset_id=p.dataset_id,
            job_id=p.job_id,
            artifact=p.artifact,
            created_at=p.created_at,
        )
        for p in list_predictions(ctx.store, name)
    ]


@operation("predict")
def predict_file(
    ctx: Context,
    model: str,
    path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    column: str | None = None,
    progress: Progress | None = None,
) -> tuple[Path, int]:
    """Predict every row of a data file, every line of a .txt file, or every image
    under a folder; write the inputs with the predictions (label, score and
    per-label probabilities, or tags, or a value) to `out` (CSV or JSONL)."""
    src = Path(path)
    predictor = loaded_predictor(ctx.store, model)
    needed = predictor.columns
    frame = _read_inputs(src, needed)
    if column is not None:
        if len(needed) > 1:
            raise UsageError(f"--column is for single-input models; this one reads {', '.join(needed)}")
        if column not in frame.columns:
            raise DataError(
                f"{src}: text column {column!r} not found; columns are {', '.join(frame.columns)} "
                "(choose one with --column)"
            )
    inputs = frame.copy()
    if column is not None:
        inputs[needed[0]] = frame[column]
    for name in needed:
        if name not in inputs.columns:
            kind = "text column" if len(needed) == 1 else "input column"
            raise DataError(
                f"{src}: {kind} {name!r} not found; columns are {', '.join(map(str, frame.columns))}"
                + (" (choose one with --column)" if len(needed) == 1 else "")
            )
    target = Path(out) if out else Path.cwd() / f"{src.stem}.predictions.csv"
    if target.suffix.lower() not in (".csv", ".jsonl"):
        raise UsageError(f"{target}: predictions are written as .csv or .jsonl")
    result = predictor.predict_frame(frame, column, progress, source=str(src))
    with atomic_path(target) as tmp:
        if target.suffix.lower() == ".jsonl":
            result.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            result.to_csv(tmp, index=False)
    return target, len(result)


def _read_inputs(src: Path, needed: list[str]) -> pd.DataFrame:
    """The rows to predict: a table, a .txt file (one value a line) or a folder of images
    (one row per image) for single-input models."""
    import pandas as pd

    from llmos.store.datasets import detect_format, read_table
    from llmos.store.images import list_images

    if src.is_dir():
        images = list_images(src)
        if not images:
            raise DataError(f"{src}: no image files in this folder")
        if len(needed) > 1:
            raise UsageError(f"{src}: a folder of images is for single-input models")
        return pd.DataFrame({needed[0]: [str(p.resolve()) for p in images]})
    if src.suffix.lower() == ".txt":
        if not src.exists():
            raise NotFoundError(f"{src}: no such file")
        try:
            lines = [ln for ln in src.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except UnicodeDecodeError as exc:
            raise DataError(f"{src}: not UTF-8 text (invalid byte at offset {exc.start})") from exc
        if not lines:
            raise DataError(f"{src}: the file is empty")
        if len(needed) > 1:
            raise UsageError(f"{src}: a .txt file is for single-input models")
        return pd.DataFrame({needed[0]: lines})
    return read_table(src, detect_format(src, None))


def write_report(metrics: dict[str, Any], folder: Path, title: str) -> None:
    """metrics.json and, for classifiers, confusion_matrix.png into `folder` (`llmos eval --report`)."""
    import json

    from llmos.train.metrics import plot_confusion_matrix

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if "confusion_matrix" in metrics:
        plot_confusion_matrix(metrics["confusion_matrix"], folder / "confusion_matrix.png", title)
