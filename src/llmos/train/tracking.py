"""Experiment tracking: the report's loss and metric curves (drawn from the per-step values
the store keeps) and the export of a registered run to MLflow or TensorBoard (`tracking:
{mlflow: URI, tensorboard: DIR}` in a spec, or `llmos models export-run`), through the
trackers' own writers (mlflow-skinny's client; TensorBoard's event-file writer, as torch
ships it), so that what they read back is what they would have logged themselves."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from llmos.core.errors import UsageError
from llmos.store.db import Store
from llmos.store.schema import ModelVersion


def series(steps: Any) -> dict[str, tuple[list[int], list[float]]]:
    """(step, epoch, name, value) rows -> name -> (steps, values), in step order."""
    out: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for step, _epoch, name, value in sorted(steps, key=lambda s: (s[2], s[0])):
        out[name][0].append(int(step))
        out[name][1].append(float(value))
    return dict(out)


def plot_curves(steps: Any, path: Path, title: str = "") -> dict[str, list[list[float]]]:
    """One panel per metric against the optimizer step (loss, lr, samples_per_s, val_*).
    Returns what was drawn, read back from the figure's lines: name -> [[step, value]]
    (the report keeps it as curves.json, so a reader can check the picture's numbers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = series(steps)
    names = sorted(curves, key=lambda n: (n != "loss", n))
    drawn: dict[str, list[list[float]]] = {}
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 2.2 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        xs, ys = curves[name]
        (line,) = ax.plot(xs, ys, marker="o" if len(xs) < 20 else None, markersize=3)
        drawn[name] = [[float(x), float(y)] for x, y in line.get_xydata()]
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    axes[0, 0].set_title(title or "training curves")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return drawn


def _flat(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = str(value)[:500]


def _artifact_location(uri: str, experiment: str) -> str | None:
    """Where a new experiment in a sqlite store keeps its artifacts: beside the database
    (MLflow's own default is ./mlruns of whatever folder the process happens to run in).
    Other stores (a folder, a tracking server) choose their own: None."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///")).resolve()
    return (database.parent / "mlruns" / experiment).as_uri()


def export_to_mlflow(store: Store, row: ModelVersion, uri: str, project: str = "default") -> str:
    """Write one registered run to the MLflow tracking store at `uri` (sqlite:///..., a
    folder, http://...): the spec as parameters, every stored per-step metric at its step,
    the final metrics, and the report files and spec as artifacts. Returns the MLflow run id."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UsageError("MLflow export needs mlflow-skinny: pip install 'llmos[tracking]'") from None
    from mlflow.entities import Metric, Param

    from llmos.store.tracking import run_metrics

    uri = uri.removeprefix("mlflow://") if uri.startswith("mlflow://") else uri
    rows = run_metrics(store, row.id, project=project)
    params: dict[str, str] = {}
    _flat("", row.spec or {}, params)
    try:
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(row.name)
        experiment_id = (
            experiment.experiment_id
            if experiment
            else client.create_experiment(row.name, artifact_location=_artifact_location(uri, row.name))
        )
        run = client.create_run(
            experiment_id, run_name=row.ref, tags={"llmos.model": row.ref, "llmos.task": row.task}
        )
        run_id = run.info.run_id
        stamp = int(row.created_at.timestamp() * 1000)
        metrics = [Metric(m.name, m.value, int(m.at.timestamp() * 1000), m.step) for m in rows]
        final = {k: v for k, v in (row.metrics or {}).items() if isinstance(v, int | float)}
        metrics += [Metric(f"final.{k}", float(v), stamp, 0) for k, v in final.items()]
        items = [Param(k[:250], v) for k, v in params.items()]
        for i in range(0, len(items), 90):  # MLflow's limits: 100 params, 1000 metrics a batch
            client.log_batch(run_id, params=items[i : i + 90])
        for i in range(0, len(metrics), 900):
            client.log_batch(run_id, metrics=metrics[i : i + 900])
        with tempfile.TemporaryDirectory() as tmp:
            manifest: dict[str, str] = row.artifacts or {}
            for path, digest in manifest.items():
                if path.startswith("report/") or path == "spec.yaml":
                    target = Path(tmp) / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(store.artifacts.read_bytes(digest, f"{row.ref} {path}"))
            client.log_artifacts(run_id, tmp)
        client.set_terminated(run_id)
    except UsageError:
        raise
    except Exception as exc:  # unreachable server, bad URI scheme, unwritable folder
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot export {row.ref} to MLflow at {uri!r}: {first[:300]}") from None
    return str(run_id)


def export_to_tensorboard(store: Store, row: ModelVersion, folder: str, project: str = "default") -> str:
    """Write one registered run as a TensorBoard run in FOLDER/NAME@VERSION: every stored
    per-step metric as a scalar at its step and time, the final metrics as `final/NAME`
    at the last step, and the spec as text. Returns the run's folder."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError("TensorBoard export needs tensorboard: pip install 'llmos[tracking]'") from None
    import yaml

    from llmos.store.tracking import run_metrics

    rows = run_metrics(store, row.id, project=project)
    target = Path(folder).expanduser() / row.ref
    try:
        target.mkdir(parents=True, exist_ok=True)
        writer = SummaryWriter(log_dir=str(target))
    except OSError as exc:
        raise UsageError(
            f"cannot export {row.ref} to TensorBoard folder {folder!r}: {exc.strerror}"
        ) from None
    try:
        for m in rows:
            writer.add_scalar(m.name, m.value, global_step=m.step, walltime=m.at.timestamp())
        last = max((m.step for m in rows), default=0)
        final = {k: v for k, v in (row.metrics or {}).items() if isinstance(v, int | float)}
        for name, value in final.items():
            writer.add_scalar(f"final/{name}", float(value), global_step=last)
        spec = yaml.safe_dump(row.spec or {}, sort_keys=False)
        writer.add_text("spec", "\n".join(f"    {line}" for line in spec.splitlines()), global_step=0)
    finally:
        writer.close()
    return str(target)


def export_run(store: Store, row: ModelVersion, to: str, project: str = "default") -> tuple[str, str]:
    """Export to the tracker `to` names: `tensorboard://DIR` (or `tensorboard:DIR`), else an
    MLflow tracking URI. Returns (tracker, MLflow run id or TensorBoard run folder)."""
    for prefix in ("tensorboard://", "tensorboard:"):
        if to.startswith(prefix):
            folder = to.removeprefix(prefix)
            if not folder:
                raise UsageError("tensorboard:// needs a folder: tensorboard:///path/to/runs")
            return "tensorboard", export_to_tensorboard(store, row, folder, project)
    return "mlflow", export_to_mlflow(store, row, to, project)
