"""JSON-ready views of store rows, shared by the CLI's `--json` output and the SDK."""

from __future__ import annotations

from typing import Any

from llmos.core.util import iso
from llmos.store.schema import DatasetVersion, Job, ModelVersion, PredictionSet


def dataset_summary(ds: DatasetVersion, full: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ref": ds.ref,
        "name": ds.name,
        "version": ds.version,
        "rows": ds.num_rows,
        "format": ds.format,
        "label_column": ds.label_column,
        "labels": len(ds.label_distribution or {}),
        "content_hash": ds.content_hash,
        "created_at": iso(ds.created_at),
    }
    if full:
        data.update(
            source=ds.source,
            size_bytes=ds.size_bytes,
            columns=ds.columns,
            label_distribution=ds.label_distribution,
        )
    return data


def model_summary(m: ModelVersion, full: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ref": m.ref,
        "name": m.name,
        "version": m.version,
        "task": m.task,
        "base_model": m.base_model,
        "method": m.method,
        "accuracy": m.metrics.get("accuracy"),
        "macro_f1": m.metrics.get("macro_f1"),
        "perplexity": m.metrics.get("perplexity"),
        "epsilon": (m.metrics.get("privacy") or {}).get("epsilon"),  # DP runs: the accountant's
        "train_seconds": round(m.train_seconds, 1),
        "created_at": iso(m.created_at),
    }
    if full:
        data.update(
            spec=m.spec,
            lineage={
                "train_dataset_id": m.train_dataset_id,
                "test_dataset_id": m.test_dataset_id,
                "split": m.split,
            },
            metrics=m.metrics,
            artifacts=m.artifacts,
        )
    return data


def job_summary(job: Job, full: bool = False) -> dict[str, Any]:
    def when(t: Any) -> str | None:
        return iso(t)

    data: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind,
        "name": job.name,
        "state": job.state,
        "priority": job.priority,
        "resources": {"cpus": job.cpus, "gpus": job.gpus, "memory_mb": job.memory_mb},
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "progress": job.progress,
        "result": job.result,
        "error": job.error,
        "created_at": when(job.created_at),
        "started_at": when(job.started_at),
        "finished_at": when(job.finished_at),
    }
    if full:
        data.update(
            payload=job.payload,
            handler=job.handler,
            threads=job.threads,
            pid=job.pid,
            cancel_requested=job.cancel_requested,
            heartbeat_at=when(job.heartbeat_at),
            log=job.log_path,
        )
    return data


def prediction_summary(p: PredictionSet) -> dict[str, Any]:
    return {
        "ref": p.ref,
        "name": p.name,
        "version": p.version,
        "rows": p.num_rows,
        "columns": p.columns,
        "model_id": p.model_id,
        "dataset_id": p.dataset_id,
        "job_id": p.job_id,
        "artifact": p.artifact,
        "created_at": iso(p.created_at),
    }
