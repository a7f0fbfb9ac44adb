"""`llmos adapt` as a kernel job: what it reads (new feedback, or a dataset of labelled
rows), the check done before any job is queued, and the handler a worker runs.

New feedback is the deployment's labelled feedback after the newest feedback id an
earlier adapt used, read through the feedback store; `--data` names a registered dataset
of labelled rows instead (for example labels imported after `llmos label suggest`).
"""

from __future__ import annotations

import getpass
from dataclasses import asdict
from typing import Any

import pandas as pd

from llmos.core.errors import UsageError
from llmos.kernel.context import JobContext
from llmos.store.db import Store

ADAPT_HANDLER = "llmos.adapt.jobs:adapt_job"


def new_feedback(store: Store, deployment: str, data: str | None = None) -> pd.DataFrame:
    """The labelled rows the next adapt of `deployment` trains and gates on."""
    from llmos.store.adaptation import last_feedback_used
    from llmos.store.deployments import get_deployment

    get_deployment(store, deployment)
    if data is not None:
        from llmos.store.datasets import get_dataset, load_frame

        return load_frame(store, get_dataset(store, data))
    try:
        from llmos.store.feedback import labelled_feedback  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # the feedback store arrives with the feedback branch
        raise UsageError(
            "this llmos has no feedback store yet: give the new labelled rows with --data DATASET"
        ) from None
    frame: pd.DataFrame = labelled_feedback(store, deployment, after_id=last_feedback_used(store, deployment))
    return frame


def submit_adapt(
    store: Store,
    deployment: str,
    settings: Any,
    data: str | None = None,
    cpus: int = 1,
    actor: str | None = None,
) -> Any:
    """Queue an adapt job; with no new feedback nothing is queued (a one-line error)."""
    from llmos.kernel.jobs import submit
    from llmos.kernel.resources import Resources

    rows = new_feedback(store, deployment, data)
    if rows.empty:
        source = f"dataset {data}" if data else "feedback since the last adapt"
        raise UsageError(
            f"no new feedback for deployment {deployment!r} ({source} is empty): nothing to adapt on"
        )
    payload = {
        "deployment": deployment,
        "settings": asdict(settings),
        "data": data,
        "actor": actor or getpass.getuser(),
    }
    return submit(
        store,
        kind="adapt",
        name=f"adapt-{deployment}",
        handler=ADAPT_HANDLER,
        payload=payload,
        resources=Resources(cpus, 0, 0),
    )


def adapt_job(ctx: JobContext) -> dict[str, Any]:
    import torch

    from llmos.adapt.continual import AdaptSettings, adapt_model

    torch.set_num_threads(ctx.threads)
    deployment = ctx.payload["deployment"]
    rows = new_feedback(ctx.store, deployment, ctx.payload.get("data"))
    if rows.empty:
        raise UsageError(f"no new feedback for deployment {deployment!r}: nothing to adapt on")
    outcome = adapt_model(
        ctx.store,
        deployment,
        rows,
        AdaptSettings(**ctx.payload["settings"]),
        ctx.progress,
        job_id=ctx.job_id,
        actor=f"{ctx.payload.get('actor', '')} (adapt job {ctx.job_id})".strip(),
    )
    result = outcome.as_dict()
    result["metrics"] = {k: v for k, v in outcome.metrics.items() if k != "history"}
    return result


def plan_adapt(store: Store, deployment: str, settings: Any, data: str | None = None) -> dict[str, Any]:
    """What an adapt would use now (`--dry-run`): rows to train on and to hold out, per label."""
    from llmos.adapt.continual import split_feedback
    from llmos.models.build import read_model_config
    from llmos.store.deployments import get_deployment
    from llmos.store.models import get_model, model_folder

    rows = new_feedback(store, deployment, data)
    if rows.empty:
        raise UsageError(f"no new feedback for deployment {deployment!r}: nothing to adapt on")
    model = get_model(store, get_deployment(store, deployment).model)
    column = read_model_config(model_folder(store, model))["output"]["column"]
    label = column if column in rows.columns else "label"
    if label not in rows.columns:
        raise UsageError(f"the new rows have no {column!r} or 'label' column")
    train, held = split_feedback(rows, label, settings.holdout, settings.seed)
    return {
        "deployment": deployment,
        "model": model.ref,
        "rows": len(rows),
        "train": len(train),
        "held_out": len(held),
        "labels": {str(k): int(v) for k, v in rows[label].astype(str).value_counts().items()},
    }
