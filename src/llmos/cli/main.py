"""Entry point of the `llmos` command.

Every verb is a thin wrapper over one `Workspace` method. Errors the user can cause
(`LlmosError`) print one line on stderr and exit with the error's code; `--debug` shows
the traceback instead.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from llmos import __version__
from llmos.cli import adapt as adapt_cmd
from llmos.cli import audit as audit_cmd
from llmos.cli import auth as auth_cmd
from llmos.cli import data as data_cmd
from llmos.cli import feedback as feedback_cmd
from llmos.cli import jobs as jobs_cmd
from llmos.cli import keys as keys_cmd
from llmos.cli import knowledge as kb_cmd
from llmos.cli import llm as llm_cmd
from llmos.cli import models as models_cmd
from llmos.cli import monitor as monitor_cmd
from llmos.cli import projects as projects_cmd
from llmos.cli import recommend as recommend_cmd
from llmos.cli import schedules as schedules_cmd
from llmos.cli import serve as serve_cmd
from llmos.cli import spec as spec_cmd
from llmos.cli import support as support_cmd
from llmos.cli import train as train_cmd
from llmos.cli import watch as watch_cmd
from llmos.cli.output import err
from llmos.cli.state import STATE
from llmos.core.errors import LlmosError
from llmos.core.settings import ENV_HOME

app = typer.Typer(
    name="llmos",
    help="llmos: import data, fine-tune, evaluate, register and use models from a short YAML spec.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(data_cmd.app, name="data")
app.add_typer(data_cmd.predictions_app, name="predictions")
app.add_typer(models_cmd.app, name="models")
app.add_typer(spec_cmd.app, name="spec")
app.add_typer(jobs_cmd.app, name="jobs")
app.add_typer(jobs_cmd.kernel_app, name="kernel")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(auth_cmd.app, name="auth")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(feedback_cmd.app, name="feedback")
app.add_typer(schedules_cmd.app, name="schedule")
app.add_typer(support_cmd.app, name="support")
app.add_typer(kb_cmd.app, name="kb")

app.add_typer(watch_cmd.app, name="watch")

app.add_typer(projects_cmd.app, name="project")
train_cmd.register(app)
llm_cmd.register(app)
serve_cmd.register(app)
adapt_cmd.register(app)
monitor_cmd.register(app)
recommend_cmd.register(app)


def _version(value: bool) -> None:
    if value:
        print(f"llmos {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    home: Annotated[
        Path | None,
        typer.Option("--home", envvar=ENV_HOME, help="Workspace folder (default ~/.llmos)."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    url: Annotated[
        str | None,
        typer.Option("--url", envvar="LLMOS_URL", help="Work against a running llmos server instead."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="LLMOS_TOKEN", help="The API token for --url (llmos_...)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    project: Annotated[
        str | None,
        typer.Option("--project", envvar="LLMOS_PROJECT", help="Act in this project (default: default)."),
    ] = None,
) -> None:
    STATE.reset(home, debug, url, token)
    STATE.project = project or None


@app.command("init")
def init(
    encrypt: Annotated[
        bool, typer.Option("--encrypt", help="Encrypt the workspace at rest (see `llmos keys`).")
    ] = False,
    db: Annotated[
        str | None,
        typer.Option("--db", metavar="URL", help="Keep the metadata in this database (postgresql://...)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create the workspace (database, artifact store) if it does not exist."""
    from llmos.cli.output import out, print_json
    from llmos.ops.workspace import check_database, shown_url

    if db:
        check_database(db)  # reachable and migrated before the workspace records it
        STATE.workspace.settings.write_store_config(db_url=db)
    home = STATE.workspace.init(encrypt=encrypt)
    status = STATE.workspace.encryption_status()
    if json_out:
        print_json(
            {
                "home": str(home),
                "database": shown_url(STATE.workspace.settings.db_url),
                "encryption": status.as_json(),
            }
        )
    else:
        out.print(
            f"workspace ready at {home}"
            + (f", encrypted (master key {status['key_id']})" if status["encrypted"] else "")
        )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        # without standalone mode, click returns the code of `typer.Exit` instead of exiting
        result = app(args=args, prog_name="llmos", standalone_mode=False)
    except LlmosError as exc:
        if debug:
            raise
        # escaped: messages quote names and hints such as "pip install 'llmos[onnx]'",
        # whose brackets rich would otherwise read as markup and drop
        err.print(f"[red]error:[/red] {escape(exc.message)}", soft_wrap=True)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        return int(getattr(exc, "exit_code", 2))
    except (KeyboardInterrupt, typer.Abort):
        result = 130
    if result == 130:  # typer turns Ctrl-C into exit code 130
        err.print("[yellow]cancelled[/yellow]")
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
