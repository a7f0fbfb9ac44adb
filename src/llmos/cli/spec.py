"""`llmos spec schema|check`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmos.cli.output import out, print_json

app = typer.Typer(help="Task spec tools.", no_args_is_help=True)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of the task spec."""
    from llmos.spec import spec_json_schema

    print(spec_json_schema())


@app.command("check")
def check(
    path: Annotated[Path, typer.Argument(help="YAML spec file.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Validate a spec; report every problem with its path (exit 5 if any)."""
    from llmos.core.errors import SpecError
    from llmos.spec import load_spec

    try:
        spec = load_spec(path)
    except SpecError as exc:
        if json_out:
            print_json({"valid": False, "problems": exc.problems or [exc.message]})
            raise typer.Exit(exc.exit_code) from None
        if exc.problems:
            for problem in exc.problems:
                out.print(f"{path}: {problem}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        raise
    if json_out:
        print_json({"valid": True, "spec": spec.model_dump(mode="json")})
    else:
        model = f"{spec.model.name} + {spec.method.type}" if spec.model else "no pretrained model"
        out.print(f"{path}: valid ({spec.task}, {model})")
