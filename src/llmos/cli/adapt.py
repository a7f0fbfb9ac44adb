"""`llmos adapt`, `llmos rollback` and `llmos label suggest`: thin wrappers over
`llmos.ops.adaptation`, locally or (`--url`) on a server. Locally `adapt` follows the
job with a progress bar; remotely it waits for the server's answer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmos.cli.output import out, print_json, table
from llmos.cli.state import STATE

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]

label_app = typer.Typer(help="Choose rows worth labelling (active learning).", no_args_is_help=True)


def _history(deployment: str, json_out: bool) -> None:
    rows = [d.as_json() for d in STATE.backend.adapt_history(deployment)]
    if json_out:
        print_json(rows)
        return
    table(
        f"decisions for {deployment}",
        ["at", "decision", "model", "from", "reasons"],
        [[r["at"], r["decision"], r["model"], r["parent"] or "", "; ".join(r["reasons"])] for r in rows],
    )


def adapt(
    deployment: Annotated[str, typer.Argument(help="The deployment whose model learns from new feedback.")],
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs over feedback plus replay.")] = 3,
    replay_ratio: Annotated[
        float, typer.Option("--replay-ratio", help="Original training rows replayed per new row (0: none).")
    ] = 2.0,
    ewc: Annotated[float, typer.Option("--ewc", help="EWC strength (0: off).")] = 0.0,
    lwf: Annotated[
        float, typer.Option("--lwf", help="LwF distillation weight on replayed rows (0: off).")
    ] = 1.0,
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Points of original-task accuracy the candidate may lose.")
    ] = 1.0,
    holdout: Annotated[
        float, typer.Option("--holdout", help="Share of each label's feedback held out for the gate.")
    ] = 0.25,
    new_labels: Annotated[
        bool, typer.Option("--new-labels", help="Grow the head for feedback labels the model does not know.")
    ] = False,
    data: Annotated[
        str | None,
        typer.Option("--data", help="Learn from this dataset's labelled rows instead of feedback."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be used; start nothing.")
    ] = False,
    on_drift: Annotated[
        bool,
        typer.Option("--on-drift", help="Start only if `llmos monitor` finds drift in the latest window."),
    ] = False,
    window: Annotated[int, typer.Option("--window", help="Requests per drift window (--on-drift).")] = 200,
    history: Annotated[
        bool, typer.Option("--history", help="Show the deployment's recorded decisions instead.")
    ] = False,
    cpus: Annotated[int, typer.Option("--cpus", help="CPUs the job holds and its torch threads.")] = 1,
    detach: Annotated[bool, typer.Option("--detach", help="Queue the job and return.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Fine-tune the deployed model on new feedback with replay (and optional EWC/LwF) as a
    kernel job; the gate promotes the candidate (re-pointing the deployment) only if it is
    better on held-out feedback and within --tolerance on the original test set. With
    --on-drift it starts only when the monitor finds drift (run it from cron for a schedule)."""
    from llmos.ops.adaptation import adapt_result, job_info

    if history:
        _history(deployment, json_out)
        return
    settings = {
        "epochs": epochs, "replay_ratio": replay_ratio, "ewc": ewc, "lwf": lwf, "tolerance": tolerance,
        "holdout": holdout, "new_labels": new_labels,
    }  # fmt: skip
    backend = STATE.backend
    if dry_run:
        plan = backend.plan_adapt(deployment, data=data, **settings)
        if json_out:
            print_json(plan.as_json())
        else:
            out.print(
                f"would adapt {deployment} ({plan.model}) on {plan.train} rows, "
                f"holding out {plan.held_out} for the gate"
            )
        return
    if on_drift:
        report = backend.monitor(deployment, window=window, fire=True)
        if not report.drifted:
            why = "no full window yet" if report.latest is None else "the latest window shows no drift"
            if json_out:
                print_json({"deployment": deployment, "drifted": False, "started": None, "reason": why})
            else:
                out.print(f"{deployment}: {why}; adapt not started")
            return
    if detach:
        job = backend.submit_adapt(deployment, data=data, cpus=cpus, **settings)
        if json_out:
            print_json(job.as_json())
        else:
            out.print(
                f"job {job.id} queued ({job.kind} {job.name}); follow it with `llmos jobs logs {job.id} -f`"
            )
        return
    if STATE.remote:
        result = backend.adapt(deployment, data=data, cpus=cpus, **settings)
    else:
        from llmos.cli.jobs import attend

        done = attend(backend.submit_adapt(deployment, data=data, cpus=cpus, **settings), False, json_out)
        if done is None:
            return
        result = adapt_result(job_info(done))
    if json_out:
        print_json(result.as_json())
        return
    verb = "promoted" if result.decision == "promote" else "rejected"
    out.print(f"{verb} [bold]{result.candidate}[/bold] (from {result.parent}, job {result.job})")
    for reason in result.reasons:
        out.print(f"  {reason}")


def rollback(
    deployment: Annotated[str, typer.Argument(help="The deployment to return to its previous model.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Re-point a deployment to the model it served before its latest re-pointing."""
    decision = STATE.backend.rollback(deployment, reason).as_json()
    if json_out:
        print_json(decision)
        return
    out.print(f"rolled back {deployment}: {decision['parent']} -> [bold]{decision['model']}[/bold]")


@label_app.command("suggest")
def suggest(
    dataset: Annotated[str, typer.Argument(help="NAME[@V] of a dataset of unlabelled rows.")],
    model: Annotated[str, typer.Option("--model", help="NAME[@V] of the classifier that scores them.")],
    k: Annotated[int, typer.Option("--k", help="How many rows to pick.")] = 50,
    strategy: Annotated[str, typer.Option("--strategy", help="margin or entropy.")] = "margin",
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the rows (CSV or JSONL) with an empty label column.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Pick the K most informative unlabelled rows (uncertain, and diverse among the
    uncertain) and export them for labelling; import the labels and run `llmos adapt --data`."""
    result = STATE.backend.suggest_labels(dataset, model, k, strategy, out_file).as_json()
    if json_out:
        print_json(result)
        return
    for row in result["rows"]:
        out.print(f"  {row['uncertainty']:.3f}  {row['predicted']:<24} {str(row['text'])[:70]}")
    where = f"; wrote {result['out']}" if result.get("out") else ""
    out.print(f"picked {len(result['rows'])} of {result['candidates']} rows{where}")


def register(app: typer.Typer) -> None:
    app.command("adapt")(adapt)
    app.command("rollback")(rollback)
    app.add_typer(label_app, name="label")
