"""`llmos train`, `llmos eval`, `llmos predict` and `llmos demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from llmos.cli.output import RichProgress, fmt_pct, headline, out, print_json, table
from llmos.cli.state import STATE

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
DetachOpt = Annotated[bool, typer.Option("--detach", help="Queue it as a job, print the job id and return.")]
PriorityOpt = Annotated[int, typer.Option("--priority", help="Job priority: higher runs first.")]
BackendOpt = Annotated[
    str | None, typer.Option("--backend", help="local or ray (overrides the spec's backend.type).")
]


def print_generation_report(metrics: dict[str, Any], title: str) -> None:
    before = metrics.get("before")
    was = f" (before training {before['perplexity']})" if before else ""
    out.print(
        f"[bold]{title}[/bold]: perplexity {metrics['perplexity']}{was}  "
        f"exact match {fmt_pct(metrics.get('exact_match'))}  ROUGE-L {metrics.get('rouge_l', '-')}  "
        f"({metrics['num_examples']} examples)"
    )
    for sample in metrics.get("samples", []):
        out.print(f"[bold]prompt[/bold]    {sample['prompt']}", soft_wrap=True)
        out.print(f"reference {sample['reference']}", markup=False, soft_wrap=True)
        for key in ("before", "after", "answer"):
            if key in sample:
                out.print(f"{key:<9} {sample[key]}", markup=False, soft_wrap=True)


def print_report(metrics: dict[str, Any], title: str, max_classes: int = 100) -> None:
    if "perplexity" in metrics:
        print_generation_report(metrics, title)
        return
    out.print(f"[bold]{title}[/bold]: {headline(metrics)}  ({metrics['num_examples']} examples)")
    if metrics.get("privacy"):
        dp = metrics["privacy"]
        out.print(
            f"differential privacy: epsilon {dp['epsilon']} of {dp['target_epsilon']} "
            f"(delta {dp['delta']:.2g})"
        )
    per_class = list(metrics.get("per_class", {}).items())[:max_classes]
    if per_class:
        table(
            None,
            ["label", "precision", "recall", "f1", "support"],
            [
                (k, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", v["support"])
                for k, v in per_class
            ],
        )


def train(
    spec: Annotated[Path, typer.Argument(help="YAML task spec.")],
    detach: DetachOpt = False,
    priority: PriorityOpt = 0,
    cpus: Annotated[
        int | None, typer.Option("--cpus", help="CPUs the job holds and its torch threads (default: all).")
    ] = None,
    gpus: Annotated[int, typer.Option("--gpus", help="GPUs the job holds.")] = 0,
    memory: Annotated[int, typer.Option("--memory", help="Memory in MB the job holds.")] = 0,
    max_attempts: Annotated[
        int, typer.Option("--max-attempts", help="Attempts before a crashing job fails.")
    ] = 2,
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Fine-tune and evaluate a model from a spec; register it as NAME@V. It runs as a
    kernel job (checkpointed, retried after a crash): followed with a progress bar, or
    left running with --detach. Ctrl-C while following cancels or detaches."""
    from llmos.cli.jobs import attend

    job = STATE.backend.submit_train(
        spec,
        priority=priority,
        cpus=cpus,
        gpus=gpus,
        memory_mb=memory,
        max_attempts=max_attempts,
        backend=backend,
    )
    done = attend(job, detach, json_out)
    if done is None:
        return
    ref = done.result["model"]
    metrics, report_dir, png, encrypted = _trained_report(ref, done.result)
    if json_out:
        print_json(
            {
                "model": ref,
                "job": done.id,
                "metrics": metrics,
                "history": done.result.get("metrics", {}).get("history", []),
                "report_dir": report_dir,
            }
        )
        return
    if "search" in metrics:
        print_trials(metrics["search"])
    if "distill" in metrics:
        d = metrics["distill"]
        agreement = ", ".join(f"{100 * r['teacher_agreement']:.1f}%" for r in d["rounds"])
        out.print(
            f"distilled from {d['teacher']}: {d['labelled_rows']} labelled + {d['unlabelled_rows']} "
            f"unlabelled rows ({d['teacher_cached_rows']} teacher answers from the cache, "
            f"{d['teacher_seconds']:.0f}s asking it); agreement with the teacher per round: {agreement}"
        )
    print_report(metrics, f"{ref} on the test set", max_classes=20)
    shown = f"; confusion matrix: {png}" if png else f"; report: {report_dir}"
    if encrypted:  # that folder is a decrypted copy, removed when this command ends
        shown = "; its report is stored encrypted (`llmos eval MODEL --data D --report DIR` writes one)"
    out.print(f"registered [bold]{ref}[/bold] (job {done.id}){shown}")


def print_trials(search: dict[str, Any]) -> None:
    """The trial table of a `search:` run (the registered metrics' `search`)."""
    from llmos.cli.output import table

    names = sorted({k for t in search["trials"] for k in t["params"]})
    rows = [
        [
            f"{t['trial']}{' *' if t['trial'] == search['best_trial'] else ''}",
            *(_value(t["params"].get(n)) for n in names),
            "" if t["score"] is None else f"{t['score']:.4f}",
            t["epochs"],
            t["state"],
            t["seconds"],
        ]
        for t in search["trials"]
    ]
    title = f"search: {len(rows)} trials, {search['metric']} (* registered)"
    table(title, ["trial", *names, search["metric"], "epochs", "state", "seconds"], rows)


def _value(value: Any) -> str:
    return "" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)


# where a server offers a registered model's report files (the registry routes)
REPORT_ROUTE = "/v1/registry/models/{ref}/report/{file}"


def _trained_report(ref: str, result: dict[str, Any]) -> tuple[dict[str, Any], str, str | None, bool]:
    """The test-set metrics of a model a job registered, where its report is, its confusion
    matrix (if it has one) and whether the workspace is encrypted. Locally, from the
    report beside the weights; from a server, from the job's result and the registry route."""
    import json

    if STATE.remote:
        metrics = {k: v for k, v in (result.get("metrics") or {}).items() if k != "history"}
        base = f"{STATE.url.rstrip('/')}" if STATE.url else ""
        folder = base + REPORT_ROUTE.format(ref=ref, file="")
        png = folder + "confusion_matrix.png" if "per_class" in metrics else None
        return metrics, folder, png, False
    ws = STATE.workspace
    report_dir = ws.model_path(ref) / "report"
    metrics = json.loads((report_dir / "metrics.json").read_text())
    png_path = report_dir / "confusion_matrix.png"
    return metrics, str(report_dir), str(png_path) if png_path.exists() else None, ws.store.encrypted


def eval_(
    model: Annotated[str, typer.Argument(help="Model NAME or NAME@VERSION.")],
    data: Annotated[str, typer.Option("--data", "-d", help="Dataset NAME or NAME@VERSION.")],
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Folder for metrics.json and confusion_matrix.png."),
    ] = None,
    json_out: JsonOpt = False,
    optimize: Annotated[
        str | None,
        typer.Option(
            "--optimize",
            help="int8 (quantised), onnx (ONNX Runtime, fp32) or onnx-int8: "
            "evaluate that version, beside the original.",
        ),
    ] = None,
) -> None:
    """Evaluate a registered model on a dataset version."""
    with RichProgress(quiet=json_out) as progress:
        metrics = STATE.backend.evaluate(model, data, progress, optimize=optimize)
    if report is not None:
        from llmos.ops.predict import write_report

        write_report(metrics, report, f"{model} on {data}")
    if json_out:
        print_json({"model": model, "data": data, "metrics": metrics})
        return
    print_report(metrics, f"{model} on {data}" + (f" ({optimize})" if optimize else ""))
    if "optimized" in metrics:
        o = metrics["optimized"]
        out.print(
            f"{o['optimize']}: accuracy change {100 * o['accuracy_change']:+.2f} points "
            f"against full precision ({fmt_pct(o['baseline_accuracy'])})"
        )


def predict(
    model: Annotated[str, typer.Argument(help="Model NAME or NAME@VERSION.")],
    texts: Annotated[
        list[str] | None,
        typer.Argument(help="Texts (or image paths, or space-separated words) to predict for."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", "-f", help="CSV/TSV/JSONL/Parquet, .txt (one text a line) or a folder of images."
        ),
    ] = None,
    column: Annotated[str | None, typer.Option("--column", help="Text column of --file or --data.")] = None,
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="Predict a whole dataset version as a job (a prediction set)."),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Prediction set name (with --data).")] = None,
    backend: BackendOpt = None,
    detach: DetachOpt = False,
    out_path: Annotated[
        Path | None, typer.Option("--out", "-o", help="Predictions file (.csv or .jsonl).")
    ] = None,
    top: Annotated[int, typer.Option("--top", help="Probabilities shown per text.")] = 3,
    json_out: JsonOpt = False,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Show each token's contribution to the label (text classifiers)."),
    ] = False,
) -> None:
    """Predict labels (with probabilities) for texts or a whole file."""
    from llmos.core.errors import UsageError

    if explain and (file is not None or data is not None):
        raise UsageError("--explain is for texts given on the command line, not --file or --data")
    if data is not None:
        _predict_dataset(model, data, name, column, backend, detach, json_out)
        return
    if file is None and not texts:
        raise UsageError("give texts to classify, --file PATH or --data DATASET")
    if file is not None:
        if STATE.remote:
            raise UsageError(
                "--file reads and writes files on the workspace's machine; with --url, "
                "give texts or predict an uploaded dataset with --data"
            )
        with RichProgress(quiet=json_out) as progress:
            target, count = STATE.workspace.predict_file(model, file, out_path, column, progress)
        if json_out:
            print_json({"model": model, "input": str(file), "output": str(target), "rows": count})
        else:
            out.print(f"wrote {count} predictions to {target}")
        return
    assert texts is not None
    rows = STATE.backend.predict_model(model, texts, explain=explain).predictions
    if json_out:
        print_json([{"text": t, **r} for t, r in zip(texts, rows)])
        return
    for text, row in zip(texts, rows):
        if "probabilities" not in row:  # tags or a number
            shown = " ".join(row["tags"]) if "tags" in row else row.get("value")
            out.print(f"[bold]{shown}[/bold]  {text}")
            continue
        best = sorted(row["probabilities"].items(), key=lambda kv: -kv[1])[:top]
        label = row.get("label") or ", ".join(row.get("labels", [])) or "(none)"
        out.print(f"[bold]{label}[/bold]  {text}")
        out.print("    " + "  ".join(f"{k} {v:.3f}" for k, v in best))
        if "explanation" in row:
            out.print("    " + _explanation_line(row["explanation"]))


def _predict_dataset(
    model: str,
    data: str,
    name: str | None,
    column: str | None,
    backend: str | None,
    detach: bool,
    json_out: bool,
) -> None:
    from llmos.cli.jobs import attend

    job = STATE.backend.submit_predict(
        model, data, name=name, column=column, backend={"type": backend or "local"}
    )
    done = attend(job, detach, json_out)
    if done is None:
        return
    if json_out:
        print_json({"job": done.id, **(done.result or {})})
    else:
        result = done.result or {}
        ref = result.get("predictions")
        out.print(f"wrote {result.get('rows')} predictions as [bold]{ref}[/bold] (job {done.id})")


def demo(json_out: JsonOpt = False) -> None:
    """Import the bundled Banking77 subset, train MiniLM + LoRA, report and predict."""
    from llmos.sdk.demo import run_demo

    with RichProgress(quiet=json_out) as progress:
        result = run_demo(STATE.workspace, progress)
    if json_out:
        print_json(result)
        return
    print_report(result["metrics"], f"{result['model']} on {result['test']}")
    out.print("[bold]sample predictions[/bold]")
    for sample in result["samples"]:
        out.print(f"  {sample['text']!r} -> [bold]{sample['label']}[/bold] ({sample['score']:.2f})")
    out.print(f"test accuracy {fmt_pct(result['metrics']['accuracy'])} in {result['seconds']:.0f}s")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("eval")(eval_)
    app.command("predict")(predict)
    app.command("demo")(demo)


def _explanation_line(explanation: dict[str, object]) -> str:
    """Tokens coloured by their score for the explained label: green towards it, red away."""
    tokens: list[dict[str, float | str]] = explanation["tokens"]  # type: ignore[assignment]
    top = max((abs(float(t["score"])) for t in tokens), default=0.0) or 1.0
    parts = []
    for t in tokens:
        score = float(t["score"])
        style = "green" if score > 0 else "red"
        bold = " bold" if abs(score) >= 0.5 * top else ""
        parts.append(f"[{style}{bold}]{t['token']}[/]({score:+.2f})")
    return " ".join(parts)
