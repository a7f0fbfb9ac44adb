"""`llmos feedback import|list`: feedback on served predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmos.cli.output import out, print_json, table
from llmos.cli.state import STATE
from llmos.ops.feedback import FeedbackEvent

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
app = typer.Typer(
    help="Feedback on served predictions: correct labels, ratings, answers.", no_args_is_help=True
)


@app.command("import")
def import_(
    path: Annotated[
        Path,
        typer.Argument(
            help="CSV/JSONL: request_id (+ index) and label, rating or answer; "
            "or the model's input columns and a label for new data."
        ),
    ],
    deployment: Annotated[
        str, typer.Option("--deployment", "-d", help="The deployment the feedback is for.")
    ],
    new_labels: Annotated[
        bool, typer.Option("--new-labels", help="Accept labels the model does not know yet (new intents).")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Import a feedback file: every row is checked first, then all are stored or none."""
    result = STATE.backend.import_feedback(path, deployment, new_labels=new_labels).as_json()
    if json_out:
        print_json(result)
    else:
        out.print(
            f"imported {result['imported']} feedback rows for {deployment} ({result['on_requests']} on "
            f"served requests, {result['new_rows']} new labelled rows; "
            f"ids {result['first_id']}-{result['last_id']})"
        )


@app.command("list")
def list_(
    deployment: Annotated[str, typer.Argument(help="The deployment.")],
    limit: Annotated[int, typer.Option("--limit", help="Show the newest N.")] = 50,
    labelled: Annotated[
        bool,
        typer.Option("--labelled", help="Corrected labels and answers joined with the inputs they refer to."),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Feedback events of a deployment, newest first (`--labelled`: what adapt learns from, oldest first)."""
    if labelled:
        rows = [f.as_json() for f in STATE.backend.labelled_feedback(deployment)][-limit:]
        if json_out:
            print_json(rows)
            return
        table(
            f"labelled feedback on {deployment} ({len(rows)} shown)",
            ["id", "model", "predicted", "label", "answer", "inputs"],
            (
                [r["feedback_id"], r["model"], r["predicted"], r["label"], r["answer"], r["inputs"]]
                for r in rows
            ),
        )
        return
    records = [f.as_json() for f in STATE.backend.feedback(deployment, limit)]
    if json_out:
        print_json(records)
        return
    columns = list(FeedbackEvent.model_fields)
    table(
        f"feedback on {deployment} ({len(records)} shown)",
        columns,
        ([r[c] for c in columns] for r in records),
    )
