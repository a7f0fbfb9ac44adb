"""The job kinds of this package, run by kernel workers: train, eval and batch-predict.

The kernel stays ignorant of training: the SDK queues a job naming one of these
handlers by its dotted path, and the worker imports it. Each handler registers what it
made (a model version, a prediction set) in one transaction with `ctx.finalize`, so a
job that is cancelled, or killed and retried, never registers twice. Nothing heavy is
imported at module level: the SDK reads the handler names from here.
"""

from __future__ import annotations

from typing import Any

from llmos.kernel.context import JobContext
from llmos.spec.tasks import task_rules

TRAIN_HANDLER = "llmos.train.jobs:train_job"
EVAL_HANDLER = "llmos.train.jobs:eval_job"
PREDICT_HANDLER = "llmos.train.jobs:batch_predict_job"


def use_threads(ctx: JobContext) -> None:
    """Torch computes with exactly the threads the kernel gave this job (its cpus)."""
    import torch

    torch.set_num_threads(ctx.threads)


def train_job(ctx: JobContext) -> dict[str, Any]:
    from llmos.spec import parse_spec
    from llmos.train.search import train_or_search

    use_threads(ctx)

    spec = parse_spec(ctx.payload["spec"], f"job {ctx.job_id}")

    def result(row: Any) -> dict[str, Any]:
        # the registered metrics too, so whoever follows the job (over HTTP as well) can
        # report them without another call
        return {
            "model": row.ref,
            "accuracy": row.metrics.get("accuracy"),
            "macro_f1": row.metrics.get("macro_f1"),
            "metrics": row.metrics,
        }

    outcome = train_or_search(
        ctx.store,
        spec,
        ctx.progress,
        # plaintext weights stay out of an encrypted workspace (a retry there starts afresh)
        checkpoint_dir=ctx.store.plain_dir(ctx.work_dir / "checkpoints"),
        job_id=ctx.job_id,
        finalize=lambda session, row: ctx.finalize(session, result(row)),
    )
    return result(outcome.model)


def _model_and_data(ctx: JobContext) -> tuple[Any, Any, Any]:
    from llmos.store.datasets import get_dataset, load_frame
    from llmos.store.models import get_model

    model = get_model(ctx.store, ctx.payload["model"])
    dataset = get_dataset(ctx.store, ctx.payload["data"])
    return model, dataset, load_frame(ctx.store, dataset)


def load_predictor(ctx: JobContext, model: Any) -> Any:
    from llmos.store.models import model_folder
    from llmos.train.predict import Predictor

    use_threads(ctx)

    return Predictor.from_folder(model_folder(ctx.store, model), ctx.store.settings.artifacts_dir)


def eval_job(ctx: JobContext) -> dict[str, Any]:
    model, dataset, frame = _model_and_data(ctx)
    use_threads(ctx)
    optimize = ctx.payload.get("optimize")
    metrics = evaluate_model(ctx.store, model, dataset, frame, optimize, ctx.progress)
    return {"model": model.ref, "data": dataset.ref, "metrics": metrics}


def check_optimize(model: Any, optimize: str | None) -> None:
    """`optimize` (int8, onnx) applies to classifiers: refused for others before any work."""
    from llmos.core.errors import UsageError
    from llmos.train.predict import OPTIMIZERS

    if optimize is None:
        return
    if optimize not in OPTIMIZERS:
        raise UsageError(
            f"optimize {optimize!r}: only {' or '.join(OPTIMIZERS)}, for fine-tuned text classifiers"
        )
    if task_rules(model.task).generates:
        raise UsageError(f"--optimize applies to classifiers; {model.ref} is a generation model")


def evaluate_model(
    store: Any,
    model: Any,
    dataset: Any,
    frame: Any,
    optimize: str | None = None,
    progress: Any = None,
    predictor: Any = None,
    llm: Any = None,
) -> dict[str, Any]:
    """Metrics of a registered model on a dataset version's rows; with `optimize`, of its
    int8 or ONNX version, with the full-precision accuracy and the difference under
    `metrics["optimized"]`. `predictor` / `llm`: already loaded copies to reuse."""
    from llmos.store.models import model_folder
    from llmos.train.predict import Predictor

    check_optimize(model, optimize)
    source = f"dataset {dataset.ref}"
    folder = model_folder(store, model)
    if task_rules(model.task).generates:
        from llmos.models.llm import LLM
        from llmos.train.generation import evaluate_llm

        llm = llm or LLM.from_folder(folder, model.ref, store.settings.artifacts_dir)
        return evaluate_llm(llm, frame, source, progress)
    baseline = predictor or Predictor.from_folder(folder, store.settings.artifacts_dir)
    if optimize is None:
        return baseline.evaluate(frame, source, progress)
    plain = baseline.evaluate(frame, source, progress)
    fast = Predictor.from_folder(folder, store.settings.artifacts_dir, optimize=optimize)
    metrics = fast.evaluate(frame, source, progress)
    metrics["optimized"] = {
        "optimize": optimize,
        "baseline_accuracy": plain["accuracy"],
        "accuracy_change": round(metrics["accuracy"] - plain["accuracy"], 5),
    }
    return metrics


def batch_predict_job(ctx: JobContext) -> dict[str, Any]:
    """Predict every row of a dataset version; keep the result as a prediction set."""
    from llmos.core.errors import DataError, UsageError
    from llmos.spec.schema import BackendConfig
    from llmos.store.predictions import register_predictions

    model, dataset, frame = _model_and_data(ctx)
    predictor = load_predictor(ctx, model)
    column = ctx.payload.get("column")  # another column for a single-input model's input
    needed = predictor.columns
    if column is not None and len(needed) > 1:
        raise UsageError(f"--column is for single-input models; this one reads {', '.join(needed)}")
    for name in [column] if column is not None else needed:
        if name not in frame.columns:
            kind = "text column" if len(needed) == 1 else "input column"
            columns = ", ".join(map(str, frame.columns))
            raise DataError(f"dataset {dataset.ref}: {kind} {name!r} not found; columns are {columns}")
    backend = BackendConfig.model_validate(ctx.payload.get("backend") or {})
    if backend.type == "ray":
        from llmos.store.models import model_folder
        from llmos.train.distributed import ray_predict_frame

        folder = model_folder(ctx.store, model)
        settings = ctx.store.settings
        result = ray_predict_frame(folder, settings.artifacts_dir, frame, column, backend, ctx.progress)
    else:
        result = predictor.predict_frame(frame, column, ctx.progress, source=f"dataset {dataset.ref}")
    name = ctx.payload.get("name") or f"{model.name}-on-{dataset.name}"
    row = register_predictions(
        ctx.store,
        name=name,
        frame=result,
        model_id=model.id,
        dataset_id=dataset.id,
        job_id=ctx.job_id,
        finalize=lambda session, r: ctx.finalize(session, summary(r, model.ref, dataset.ref)),
    )
    return summary(row, model.ref, dataset.ref)


def summary(row: Any, model: str, data: str) -> dict[str, Any]:
    return {"predictions": row.ref, "model": model, "data": data, "rows": row.num_rows}
