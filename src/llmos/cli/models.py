"""`llmos models zoo|list|show|files|download`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from llmos.cli.output import fmt_pct, headline, out, print_json, table
from llmos.cli.state import STATE
from llmos.spec.tasks import task_rules

app = typer.Typer(help="The model zoo and the registry of trained models.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@app.command("zoo")
def zoo(json_out: JsonOpt = False) -> None:
    """Model aliases with packaged weights (any Hugging Face id or local folder works too)."""
    entries = [e.as_json() for e in STATE.backend.zoo()]
    if json_out:
        print_json(entries)
        return
    table(
        None,
        ["alias", "kind", "params", "installed", "package", "description"],
        [
            (
                e["alias"],
                e["kind"],
                e["params"],
                "yes" if e["installed"] else "no",
                e["package"],
                e["description"],
            )
            for e in entries
        ],
    )


@app.command("list")
def list_(
    name: Annotated[str | None, typer.Argument(help="Only versions of this model.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many versions (a page).")] = None,
    offset: Annotated[int, typer.Option(help="Skip this many versions first.")] = 0,
    json_out: JsonOpt = False,
) -> None:
    """List registered model versions, by name then version."""
    rows = [m.as_json() for m in STATE.backend.models(name, limit, offset)]
    if json_out:
        print_json(rows)
        return
    table(
        None,
        ["model", "task", "base", "method", "accuracy", "macro F1", "perplexity", "train s", "created"],
        [
            (
                r["ref"],
                r["task"],
                r["base_model"],
                r["method"],
                fmt_pct(r["accuracy"]),
                fmt_pct(r["macro_f1"]),
                "-" if r["perplexity"] is None else f"{r['perplexity']:.3f}",
                r["train_seconds"],
                r["created_at"],
            )
            for r in rows
        ],
    )


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    json_out: JsonOpt = False,
) -> None:
    """Spec, lineage, metrics and artifacts of a model version."""
    model = STATE.backend.model(ref)
    if json_out:
        print_json(model.as_json())
        return
    lineage = model.lineage.datasets
    m = model.metrics
    out.print(f"[bold]{model.ref}[/bold]  {model.task}  {model.base_model} + {model.method}")
    split = model.split.get("split")
    how = lineage.test or f"a seeded split of it ({split})"
    out.print(f"trained on {lineage.train}, tested on {how}; rows {model.split.get('rows')}")
    if task_rules(model.task).generates:
        before = m.get("before", {})
        out.print(
            f"perplexity {m.get('perplexity')} (before training {before.get('perplexity')})  "
            f"exact match {fmt_pct(m.get('exact_match'))}  ROUGE-L {m.get('rouge_l')}  "
            f"train {model.train_seconds:.1f}s ({m.get('train_samples_per_second')} sequences/s)"
        )
    else:
        out.print(
            f"{headline(m)}  train {model.train_seconds:.1f}s ({m.get('train_samples_per_second')} samples/s)"
        )
    if m.get("privacy"):
        dp = m["privacy"]
        out.print(
            f"differential privacy: epsilon {dp['epsilon']} spent of {dp['target_epsilon']} "
            f"(delta {dp['delta']:.2g}, noise {dp['noise_multiplier']}, clip {dp['max_grad_norm']}, "
            f"{dp['accountant'].upper()} accountant, {dp['steps']} steps)"
        )
    table("artifacts", ["file", "sha256"], [(k, v[:12]) for k, v in model.artifacts.items()])


@app.command("files")
def files(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    json_out: JsonOpt = False,
) -> None:
    """The files of a model's report (metrics.json, confusion_matrix.png, ...) and its spec."""
    rows = [f.as_json() for f in STATE.backend.model_files(ref)]
    if json_out:
        print_json(rows)
        return
    table(None, ["file", "type", "sha256"], [(r["path"], r["media_type"], r["sha256"][:12]) for r in rows])


@app.command("share")
def share(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION, in the current --project.")],
    to: Annotated[str, typer.Option("--to", help="The project to publish it to, read-only.")],
    json_out: JsonOpt = False,
) -> None:
    """Publish a model version to another project, read-only (recorded in lineage and audit)."""
    info = STATE.backend.share_model(ref, to)
    if json_out:
        print_json(info.as_json())
        return
    out.print(f"shared as {info.ref} in project {to} (from {info.lineage.shared_from})")


@app.command("download")
def download(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    path: Annotated[
        str, typer.Argument(help="A file `llmos models files` lists, e.g. report/confusion_matrix.png.")
    ],
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="Where to write it (default: its name, here).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Write one of a model's report files (decrypted, from an encrypted workspace) to a file."""
    from llmos.core.util import atomic_path

    data = STATE.backend.model_file(ref, path)
    target = out_file or Path(Path(path).name)
    if target.is_dir():
        target = target / Path(path).name
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    if json_out:
        print_json({"model": ref, "path": path, "out": str(target), "bytes": len(data)})
        return
    out.print(f"wrote {escape(str(target))} ({len(data)} bytes)")


@app.command("metrics")
def metrics(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    name: Annotated[
        list[str] | None,
        typer.Option("--name", "-n", help="Only this metric (repeatable): loss, lr, val_loss ..."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """A run's per-step metrics: loss, learning rate, samples/s at each step; val_* per epoch."""
    result = STATE.backend.run_metrics(ref, name or None)
    if json_out:
        print_json(result.as_json())
        return
    steps = sorted({p.step for p in result.points})
    values = {(p.step, p.name): p.value for p in result.points}
    rows = [
        [str(s)] + [f"{values[s, n]:.4g}" if (s, n) in values else "" for n in result.names] for s in steps
    ]
    table(f"{result.model}: {len(result.points)} values", ["step", *result.names], rows)


@app.command("export-run")
def export_run(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="MLflow tracking URI (sqlite:///mlflow.db, file:///folder, http://...) or "
            "tensorboard:///folder",
        ),
    ],
    json_out: JsonOpt = False,
) -> None:
    """Write a run (spec, per-step metrics, report files) to MLflow or TensorBoard."""
    result = STATE.backend.export_run(ref, to)
    if json_out:
        print_json(result.as_json())
        return
    if result.tracker == "tensorboard":
        out.print(f"exported {escape(result.model)} as TensorBoard run {escape(result.run_id)}")
        return
    out.print(f"exported {escape(result.model)} to {escape(result.uri)} as MLflow run {result.run_id}")
