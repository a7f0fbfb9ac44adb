"""`llmos chat`, `llmos generate` and `llmos export`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from llmos.cli.output import out, print_json
from llmos.cli.state import STATE

ModelArg = Annotated[
    str,
    typer.Argument(
        help="A registered generation model (NAME[@V]) or a causal LM (zoo alias, folder, hub id)."
    ),
]
Temperature = Annotated[float, typer.Option("--temperature", "-t", help="0 is greedy decoding.")]
TopP = Annotated[float, typer.Option("--top-p", help="Nucleus sampling: keep this much probability mass.")]
MaxNew = Annotated[int, typer.Option("--max-new-tokens", "-n", help="Most tokens to generate.")]
System = Annotated[str | None, typer.Option("--system", help="System prompt (replaces the model's default).")]
Template = Annotated[
    str | None,
    typer.Option(
        "--chat-template", help="For LMs without one: `chatml`, or a Jinja template (text or file)."
    ),
]


def _params(temperature: float, top_p: float, max_new_tokens: int, stop: list[str], seed: int | None) -> Any:
    from llmos.ops.llm import sampling_params

    return sampling_params(max_new_tokens, temperature, top_p, list(stop), seed)


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def chat(
    model: ModelArg,
    system: System = None,
    temperature: Temperature = 0.7,
    top_p: TopP = 0.9,
    max_new_tokens: MaxNew = 256,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for sampling.")] = None,
    chat_template: Template = None,
) -> None:
    """Talk with a model in the terminal; answers stream as they are written.

    Commands: /reset clears the history, /system TEXT sets the system prompt, /exit quits.
    """
    params = _params(temperature, top_p, max_new_tokens, [], seed)
    llm = STATE.workspace.llm(model, chat_template)
    history: list[dict[str, str]] = []
    out.print(f"chatting with [bold]{llm.name}[/bold]; /reset, /system TEXT, /exit")
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            _write("\n")
            return
        if not line:
            continue
        if line in ("/exit", "/quit"):
            return
        if line == "/reset":
            history = []
            out.print("(history cleared)")
            continue
        if line.startswith("/system"):
            system = line[len("/system") :].strip() or None
            history = []
            out.print(f"(system prompt {'set' if system else 'cleared'}; history cleared)")
            continue
        messages = ([{"role": "system", "content": system}] if system else []) + history
        messages.append({"role": "user", "content": line})
        _write("assistant> ")
        reply = llm.chat(messages, params, on_text=lambda _i, text: _write(text))
        _write("\n")
        history += [{"role": "user", "content": line}, {"role": "assistant", "content": reply.text}]


def generate(
    model: ModelArg,
    prompt: Annotated[list[str], typer.Argument(help="Prompts; each is one user message.")],
    system: System = None,
    temperature: Temperature = 0.0,
    top_p: TopP = 1.0,
    max_new_tokens: MaxNew = 256,
    stop: Annotated[list[str] | None, typer.Option("--stop", help="Stop sequence (repeatable).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for sampling.")] = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="Continue the text as is, without the chat template.")
    ] = False,
    chat_template: Template = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Generate an answer to each prompt (streamed for a single prompt)."""
    params = _params(temperature, top_p, max_new_tokens, stop or [], seed)
    results = STATE.workspace.generate(
        model,
        prompt,
        params,
        system=system,
        raw=raw,
        stream=None if json_out or len(prompt) > 1 else _write,
        chat_template=chat_template,
    )
    if json_out:
        print_json(
            [
                {
                    "prompt": p,
                    "text": r.text,
                    "finish_reason": r.finish_reason,
                    "prompt_tokens": r.prompt_tokens,
                    "completion_tokens": r.completion_tokens,
                }
                for p, r in zip(prompt, results)
            ]
        )
    elif len(prompt) == 1:
        _write("\n")
    else:
        for p, r in zip(prompt, results):
            out.print(f"[bold]> {escape(p)}[/bold]")
            out.print(r.text, markup=False)


def export(
    model: Annotated[str, typer.Argument(help="Registered generation model NAME[@V].")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write (must be new or empty).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="merged | adapter")] = "merged",
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Export a model: merged full weights (plain transformers) or the adapter (plain peft)."""
    path = STATE.workspace.export(model, fmt, out_dir)
    files = sorted(p.name for p in path.iterdir())
    if json_out:
        print_json({"model": model, "format": fmt, "out": str(path), "files": files})
    else:
        out.print(f"exported {model} ({fmt}) to {path}: {', '.join(files)}")


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)
    app.command("generate")(generate)
    app.command("export")(export)
