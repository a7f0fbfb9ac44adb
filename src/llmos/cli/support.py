"""`llmos support create|list|open|ask|show|handoffs`: the customer-service assistant,
locally or (`--url`) on a server.

    llmos support create help-desk --intents intents --collection faq --generator smol
    llmos support ask "my card has not arrived" --assistant help-desk
    llmos support ask "and when will it come?" --session sess-...
    llmos support handoffs
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from llmos.cli.output import out, print_json, table
from llmos.cli.state import STATE
from llmos.core.errors import UsageError

app = typer.Typer(help="The customer-service assistant: answers, citations, hand-offs.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The assistant's name.")],
    intents: Annotated[str | None, typer.Option(help="Intent classifier deployment.")] = None,
    collection: Annotated[str | None, typer.Option(help="Knowledge collection to answer from.")] = None,
    reranker: Annotated[str | None, typer.Option(help="Reranker deployment scoring passages.")] = None,
    generator: Annotated[str | None, typer.Option(help="Generation deployment (answers).")] = None,
    confidence: Annotated[
        float | None, typer.Option(help="Intent probability under which a question is out of scope.")
    ] = None,
    oos_label: Annotated[
        list[str] | None, typer.Option("--oos-label", help="An intent that means out of scope (repeatable).")
    ] = None,
    faq_threshold: Annotated[float | None, typer.Option(help="Relevance of a verbatim FAQ answer.")] = None,
    relevance: Annotated[float | None, typer.Option(help="Relevance a passage needs to be used.")] = None,
    search_mode: Annotated[str | None, typer.Option(help="hybrid, dense or bm25.")] = None,
    config: Annotated[Path | None, typer.Option(help="A JSON file with any other settings.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an assistant (or replace its settings)."""
    settings: dict[str, Any] = {}
    if config is not None:
        try:
            settings = json.loads(config.read_text())
        except (OSError, ValueError) as e:
            raise UsageError(f"--config {config}: not a readable JSON object ({e})") from None
    given = {
        "intents": intents,
        "collection": collection,
        "reranker": reranker,
        "generator": generator,
        "confidence_threshold": confidence,
        "out_of_scope_labels": oos_label or None,
        "faq_threshold": faq_threshold,
        "relevance_threshold": relevance,
        "search_mode": search_mode,
    }
    settings.update({k: v for k, v in given.items() if v is not None})
    info = STATE.backend.support_create(name, settings)
    if json_out:
        print_json(info.as_json())
        return
    used = ", ".join(f"{k} {v}" for k, v in info.config.items() if v and k in given)
    out.print(f"assistant {info.name}: {escape(used) or 'no models yet'}")


@app.command("list")
def list_(json_out: JsonOpt = False) -> None:
    """Every assistant."""
    rows = STATE.backend.support_assistants()
    if json_out:
        print_json([r.as_json() for r in rows])
        return
    table(
        None,
        ["name", "intents", "collection", "generator", "confidence"],
        [
            [r.name, r.config.get("intents"), r.config.get("collection"), r.config.get("generator"),
             r.config.get("confidence_threshold")]
            for r in rows
        ],
    )  # fmt: skip


@app.command("open")
def open_(
    assistant: Annotated[str, typer.Argument(help="The assistant.")],
    json_out: JsonOpt = False,
) -> None:
    """Open a session; prints its id."""
    info = STATE.backend.support_open(assistant)
    if json_out:
        print_json(info.as_json())
        return
    out.print(info.session)


@app.command("ask")
def ask(
    message: Annotated[str, typer.Argument(help="The customer's message.")],
    session: Annotated[str | None, typer.Option(help="Continue this session.")] = None,
    assistant: Annotated[str | None, typer.Option(help="Open a new session with this assistant.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """One turn: a FAQ answer, a generated answer with citations, or a hand-off to a person."""
    if (session is None) == (assistant is None):
        raise UsageError("give --session SESSION to continue a conversation, or --assistant NAME to start")
    if session is None:
        assert assistant is not None
        session = STATE.backend.support_open(assistant).session
    reply = STATE.backend.support_ask(session, message)
    if json_out:
        print_json(reply.as_json())
        return
    out.print(escape(reply.answer))
    for c in reply.citations:
        out.print(f"  [{c['marker']}] {escape(c['id'])}")
    note = f"handoff: {reply.handoff_reason} ({reply.detail})" if reply.action == "handoff" else reply.action
    out.print(f"[dim]{escape(note)}; session {reply.session}; request {reply.request_id}[/dim]")


@app.command("show")
def show(
    session: Annotated[str, typer.Argument(help="The session id.")],
    json_out: JsonOpt = False,
) -> None:
    """A session and its transcript."""
    info = STATE.backend.support_session(session)
    if json_out:
        print_json(info.as_json())
        return
    out.print(f"session {info.session} with {info.assistant}: {info.status}, {info.turns} turns")
    for turn in info.transcript:
        out.print(f"  {turn['role']}: {escape(turn['content'])}")


@app.command("handoffs")
def handoffs(
    assistant: Annotated[str | None, typer.Option(help="Only this assistant's.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """The hand-off queue: sessions waiting for a person, with why."""
    rows = STATE.backend.support_handoffs(assistant)
    if json_out:
        print_json([r.as_json() for r in rows])
        return
    table(
        None,
        ["id", "session", "assistant", "reason", "detail", "turns"],
        [[r.id, r.session, r.assistant, r.reason, r.detail, len(r.transcript) // 2] for r in rows],
    )
