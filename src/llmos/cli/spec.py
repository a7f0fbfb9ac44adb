"""`llmos spec schema|check`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmos.cli.output import err, out, print_json
from llmos.cli.state import STATE

app = typer.Typer(help="Task spec tools.", no_args_is_help=True)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of the task spec."""
    import json

    print(json.dumps(STATE.backend.spec_schema(), indent=2))


@app.command("check")
def check(
    path: Annotated[Path, typer.Argument(help="YAML spec file.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Validate a spec; report every problem with its path (exit 5 if any). Datasets it
    names that the workspace does not hold are warnings (training would stop on them)."""
    from llmos.core.errors import SpecError

    try:
        result = STATE.backend.check_spec(path)
    except SpecError as exc:
        if json_out:
            print_json({"valid": False, "problems": exc.problems or [exc.message]})
            raise typer.Exit(exc.exit_code) from None
        if exc.problems:
            for problem in exc.problems:
                out.print(f"{path}: {problem}", soft_wrap=True, markup=False)
            raise typer.Exit(exc.exit_code) from None
        raise
    if json_out:
        print_json(result.as_json())
        return
    out.print(f"{path}: valid ({result.summary})", markup=False)
    for warning in result.warnings:
        err.print(f"warning: {path}: {warning}", soft_wrap=True, markup=False)
