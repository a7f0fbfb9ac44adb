"""`llmos recommend DEPLOYMENT --user U -k 10`: top-k items from a deployed recommender
(locally, or from a server with the global `--url`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from llmos.cli.output import out, print_json, table
from llmos.cli.state import STATE
from llmos.core.errors import UsageError


def recommend(
    deployment: Annotated[str, typer.Argument(help="The recommender deployment.")],
    user: Annotated[str | None, typer.Option("--user", "-u", help="The user id.")] = None,
    item: Annotated[
        list[str] | None, typer.Option("--item", "-i", help="A recent item of an anonymous session (repeat).")
    ] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="How many items.")] = 10,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="An item never to return (repeat).")
    ] = None,
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", help="COLUMN=VALUE of the item table an item must have (repeat)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Recommend items for a user (or a session of recent items); unknown users get the
    cold-start (popularity) answer; items they have seen are never returned."""
    filters: dict[str, Any] = {}
    for entry in filter_ or []:
        column, sep, value = entry.partition("=")
        if not sep or not column:
            raise UsageError(f"--filter {entry!r}: write COLUMN=VALUE")
        filters.setdefault(column, []).append(value)
    result = STATE.backend.recommend(deployment, user, item or [], k, exclude or [], filters or None)
    if json_out:
        print_json(result.as_json())
        return
    who = f"user {user}" if user else "this session"
    note = " (cold start: the most popular items)" if result.cold_start else ""
    out.print(f"{len(result.items)} items for {who} from {result.model}{note}")
    table(
        None,
        ["#", "item", "score", "features"],
        [
            (n, r.item, f"{r.score:.4g}", ", ".join(f"{c}={v}" for c, v in (r.features or {}).items()))
            for n, r in enumerate(result.items, 1)
        ],
    )


def register(root: typer.Typer) -> None:
    root.command("recommend")(recommend)
