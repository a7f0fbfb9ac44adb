"""The store access of opinion watches (`llmos.apps.watch`), for the application layer.

The watch operations themselves are declared in `llmos.apps.watch.operations` (the
application is built only on `ops`, as a third party would build one): they check the
permission and then call these plain functions, which are no operations of their own.
Each takes the caller's `Context` and filters by its project."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from llmos.core.errors import UsageError
from llmos.ops.context import Context

_write_lock = threading.Lock()  # one batch at a time per process: bucket rows are read, then written


def classifier_model(ctx: Context, deployment: str, what: str = "--classifier") -> str:
    """NAME@V of the registered model a deployment serves; one line when it is unknown or
    serves no registered model (a zoo LLM or an embedder)."""
    from llmos.store.deployments import DEPLOYMENT_KINDS, find_deployment, list_deployments
    from llmos.store.models import list_models

    row = find_deployment(ctx.store, deployment)
    if row is None:
        known = ", ".join(d.name for d in list_deployments(ctx.store)) or "none yet"
        raise UsageError(f"{what} {deployment!r}: no such deployment (deployments: {known})")
    if not DEPLOYMENT_KINDS[row.kind].labels or not ("@" in row.model or list_models(ctx.store, row.model)):
        raise UsageError(
            f"{what} {deployment!r} serves {row.model} ({row.kind}), not a registered classifier"
        )
    return row.model


def add_watch(ctx: Context, **values: Any) -> Any:
    from llmos.store.audit import record
    from llmos.store.watch import add_watch as add

    row = add(ctx.store, ctx.project, created_by=ctx.actor.name, **values)
    record(ctx.store, "watch.create", f"watch {row.name}", "ok", {"classifier": row.classifier})
    return row


def get_watch(ctx: Context, name: str) -> Any:
    from llmos.store.watch import get_watch as get

    return get(ctx.store, ctx.project, name)


def list_watches(ctx: Context) -> list[Any]:
    from llmos.store.watch import list_watches as rows

    return rows(ctx.store, ctx.project)


def known_client_ids(ctx: Context, watch: Any, ids: Iterable[str]) -> set[str]:
    from llmos.store.watch import known_client_ids as known

    return known(ctx.store, watch.id, ids)


def source_offset(ctx: Context, watch: Any, path: str) -> tuple[int, int]:
    from llmos.store.watch import source_offset as offset

    return offset(ctx.store, watch.id, path)


def store_texts(
    ctx: Context, watch: Any, texts: list[dict[str, Any]], source: tuple[str, int, int] | None = None
) -> tuple[int, int]:
    """Store a scored batch in one transaction; when another writer added the same bucket
    at the same moment the whole batch is rolled back and tried again (client ids keep
    a text from being counted twice)."""
    import time

    from llmos.core.errors import StoreError
    from llmos.store.watch import store_texts as put

    for attempt in range(5):
        try:
            with _write_lock:
                return put(ctx.store, watch, texts, source)
        except StoreError:
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def buckets(ctx: Context, watch: Any, series: str | None = None) -> list[Any]:
    from llmos.store.watch import buckets as rows

    return rows(ctx.store, watch.id, series)


def series_names(ctx: Context, watch: Any) -> list[str]:
    from llmos.store.watch import series_names as names

    return names(ctx.store, watch.id)


def texts_in(
    ctx: Context, watch: Any, start: datetime | None = None, limit: int = 50, order_by_score: bool = False
) -> list[Any]:
    from llmos.store.watch import texts_in as rows

    return rows(ctx.store, watch.id, start, limit, order_by_score)


def text_count(ctx: Context, watch: Any) -> tuple[int, datetime | None, datetime | None]:
    from llmos.store.watch import text_count as count

    return count(ctx.store, watch.id)


def save_alerts(ctx: Context, watch: Any, alerts: list[dict[str, Any]], cooldown: timedelta) -> list[Any]:
    """Record new episodes' alerts (each once) and put each in the audit log."""
    from llmos.store.audit import record
    from llmos.store.schema import WatchAlert
    from llmos.store.watch import save_alerts as save

    rows = [WatchAlert(project=watch.project, watch_id=watch.id, **a) for a in alerts]
    fresh = save(ctx.store, rows, cooldown)
    for a in fresh:
        record(
            ctx.store, "watch.alert", f"watch {watch.name}", "ok", {"alert_id": a.id, "message": a.message}
        )
    return fresh


def list_alerts(ctx: Context, watch: Any, open_only: bool = False) -> list[Any]:
    from llmos.store.watch import list_alerts as rows

    return rows(ctx.store, watch.id, open_only)


def ack_alert(ctx: Context, watch: Any, alert_id: int) -> Any:
    from llmos.store.audit import record
    from llmos.store.watch import ack_alert as ack

    row = ack(ctx.store, watch.id, alert_id, ctx.actor.name)
    record(ctx.store, "watch.ack", f"watch {watch.name}", "ok", {"alert_id": alert_id})
    return row


def post_webhook(url: str, payload: dict[str, Any]) -> bool:
    """The F6 webhook channel: a JSON POST, logged (never raised) when it fails."""
    from llmos.adapt.monitor import post_webhook as post

    return post(url, payload)


def sources(ctx: Context, watch: Any) -> dict[str, int]:
    from llmos.store.watch import sources as rows

    return rows(ctx.store, watch.id)


def dataset_ref(ctx: Context, data: str) -> str:
    """NAME@V of a dataset version (one line when it is unknown)."""
    from llmos.store.datasets import get_dataset

    return get_dataset(ctx.store, data).ref


def dataset_frame(ctx: Context, data: str) -> Any:
    from llmos.ops.workspace import dataset_frame as frame

    return frame(ctx, data)


def score_on_ray(ctx: Context, deployment: str, texts: list[str], workers: int) -> list[dict[str, Any]]:
    """The predictions of a deployment's model for `texts`, spread over `workers` Ray Data
    actors (a Ray on this machine, started when none runs): one per text, as `predict`
    gives them (label and probabilities). The actors run the full-precision model."""
    import pandas as pd

    from llmos.spec.schema import BackendConfig
    from llmos.store.deployments import get_deployment
    from llmos.store.models import get_model, model_folder
    from llmos.train.distributed import ray_predict_frame

    ctx.require("predict", deployment)
    model = get_model(ctx.store, get_deployment(ctx.store, deployment).model)
    backend = BackendConfig(type="ray", workers=workers, cpus_per_worker=1)
    frame = ray_predict_frame(
        model_folder(ctx.store, model), ctx.store.settings.artifacts_dir, pd.DataFrame({"text": texts}),
        "text", backend,
    )  # fmt: skip
    labels = [c[2:] for c in frame.columns if c.startswith("p_")]
    return [
        {"label": str(label), "probabilities": {k: float(p) for k, p in zip(labels, probs)}}
        for label, *probs in frame[["prediction"] + [f"p_{k}" for k in labels]].itertuples(index=False)
    ]


def queue_job(
    ctx: Context, kind: str, name: str, handler: str, payload: dict[str, Any], cpus: int, start_kernel: bool
) -> Any:
    """Queue a kernel job running `handler` (module:function) with `payload`."""
    from llmos.ops.jobs import _queue

    return _queue(
        ctx, kind, name, handler, payload, priority=0, cpus=cpus, gpus=0, memory_mb=0, max_attempts=2,
        start_kernel=start_kernel,
    )  # fmt: skip
