"""JSON-ready views of store rows, shared by the CLI's `--json` output and the SDK."""

from __future__ import annotations

from typing import Any

from llmos.store.schema import DatasetVersion, ModelVersion


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
        "created_at": ds.created_at.isoformat(timespec="seconds"),
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
        "train_seconds": round(m.train_seconds, 1),
        "created_at": m.created_at.isoformat(timespec="seconds"),
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
