"""`llmos monitor DEPLOYMENT`: drift, prediction stability and feedback accuracy per window
(locally, or a server's deployment with `--url`; `--webhook` only locally)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from llmos.cli.output import RichProgress, err, out, print_json, table
from llmos.cli.state import STATE


def monitor(
    deployment: Annotated[str, typer.Argument(help="The deployment to watch.")],
    window: Annotated[int, typer.Option("--window", help="Served requests per window.")] = 200,
    last: Annotated[int, typer.Option("--last", help="Report the last N windows.")] = 10,
    png: Annotated[Path | None, typer.Option("--png", help="Write the chart to this PNG file.")] = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="POST new alerts as JSON to this URL.")
    ] = None,
    drift_p: Annotated[float, typer.Option("--drift-p", help="Alert when the MMD p-value is below.")] = 0.01,
    psi: Annotated[float, typer.Option("--psi", help="Alert when the predicted-label PSI is above.")] = 0.25,
    confidence_p: Annotated[
        float, typer.Option("--confidence-p", help="Alert when the confidence KS p-value is below.")
    ] = 0.01,
    min_accuracy: Annotated[
        float, typer.Option("--min-accuracy", help="Alert when feedback accuracy is below (20+ labels).")
    ] = 0.7,
    embedder: Annotated[
        str, typer.Option("--embedder", help="Sentence encoder for input drift (zoo alias or folder).")
    ] = "minilm",
    no_alerts: Annotated[bool, typer.Option("--no-alerts", help="Report only; fire no alerts.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Compare a deployment's recent traffic with its model's training data; alert on drift."""
    thresholds = {"drift_p": drift_p, "psi": psi, "confidence_p": confidence_p, "min_accuracy": min_accuracy}
    with RichProgress(quiet=json_out) as progress:
        report = STATE.backend.monitor(
            deployment,
            window=window,
            last=last,
            thresholds=thresholds,
            embedder=embedder,
            fire=not no_alerts,
            webhook=webhook,
            png=png,
            progress=progress,
        )
    if json_out:
        print_json({**report.as_json(), "png": None if png is None else str(png)})
        return
    if not report.windows:
        out.print(f"{deployment}: {report.note}")
        return
    out.print(
        f"{deployment} serves {report.model}; reference: {report.reference_rows} training rows of "
        f"{report.reference}, {report.heldout_rows} held-out rows"
    )
    rows = [
        [
            w.index + 1,
            f"{w.first_id}-{w.last_id}" + ("" if w.full else " (partial)"),
            _num(w.mmd, ".4f"),
            _num(w.drift_p, ".3g"),
            _num(w.auc, ".3f"),
            _num(w.psi, ".3f"),
            _num(w.confidence, ".3f"),
            _num(w.confidence_p, ".3g"),
            "-" if w.accuracy is None else f"{w.accuracy:.1%} of {w.feedback}",
            ", ".join(w.alerts) or "ok",
        ]
        for w in report.windows
    ]
    columns = ["#", "requests", "MMD²", "drift p", "domain AUC", "label PSI", "confidence", "KS p",
               "feedback acc.", "alerts"]  # fmt: skip
    table(f"monitor {deployment} ({report.window} requests a window)", columns, rows)
    for alert in report.alerts:
        err.print(f"[yellow]alert:[/yellow] {escape(alert.message)}", soft_wrap=True)
    out.print("drifted: " + ("yes" if report.drifted else "no") + (f"; chart: {png}" if png else ""))


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def alerts(
    deployment: Annotated[str | None, typer.Argument(help="Only this deployment's alerts.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Show the newest N.")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Alerts that `llmos monitor` raised (each once), newest first."""
    rows = [a.as_json() for a in STATE.backend.alerts(deployment, limit)]
    if json_out:
        print_json(rows)
        return
    table(
        None,
        ["id", "deployment", "model", "check", "value", "threshold", "raised", "message"],
        [
            (r["alert_id"], r["deployment"], r["model"], r["check"], _num(r["value"], ".4g"),
             _num(r["threshold"], ".4g"), r["created_at"], r["message"])
            for r in rows
        ],
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor)
    app.command("alerts")(alerts)
