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
    json_out: JsonOpt = False,
) -> None:
    """List registered model versions."""
    rows = [m.as_json() for m in STATE.backend.models(name)]
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
