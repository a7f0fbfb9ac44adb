"""In-process use of registered models: predictions for rows, metrics on a dataset
version, and the prediction sets that batch-prediction jobs register.

`predict` and `evaluate` load the model in the calling process and keep it (a small
cache per workspace, most recently used first), so a server answers repeated
`POST /v1/registry/models/{ref}/predict` calls without reloading. Over HTTP an
evaluation runs as a job instead (`submit_eval`, `POST /v1/jobs` with kind `eval`): it
takes as long as the dataset is large, and a job can be followed, cancelled and retried.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from pydantic import Field

from llmos.core.errors import UsageError
from llmos.core.progress import Progress
from llmos.ops.context import Context
from llmos.ops.registry import operation
from llmos.ops.results import Result, Timestamp

if TYPE_CHECKING:
    from llmos.store.db import Store
    from llmos.train.predict import Predictor

CACHE_SIZE = 8
_cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
_lock = threading.Lock()


def loaded_predictor(store: Store, ref: str) -> Predictor:
    """The predictor of registered model `ref` (NAME or NAME@V), loaded once per process."""
    from llmos.store.models import get_model, model_folder
    from llmos.train.predict import Predictor

    row = get_model(store, ref)
    if row.task == "generation":
        raise UsageError(f"{row.ref} is a generation model: use `llmos generate` or `llmos chat`")
    key = (str(store.settings.home), row.ref)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        predictor = Predictor.from_folder(model_folder(store, row), store.settings.artifacts_dir)
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
def predict(ctx: Context, model: str, inputs: list[Any], progress: Progress | None = None) -> Predictions:
    """Predictions of a registered model for texts (or image paths, ...) of a single-input
    model, or for rows given as dicts of column values (any model)."""
    from llmos.store.models import get_model

    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) and not hasattr(inputs, "columns"):
        raise UsageError("inputs: give a list of texts or of rows (dicts of column values)")
    if len(inputs) == 0:
        raise UsageError("inputs: give at least one text or row")
    ref = get_model(ctx.store, model).ref
    return Predictions(model=ref, predictions=loaded_predictor(ctx.store, ref).predict(inputs, progress))


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
    predictor = None if row.task == "generation" else loaded_predictor(ctx.store, row.ref)
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
