"""LLMs in the calling process: load a generation model (or any causal LM), generate, export.

Over HTTP the same models answer through a deployment's OpenAI-compatible routes
(`llmos deploy MODEL --name N`, then `/v1/chat/completions`); these calls are for the
machine that holds the workspace, where `llmos chat`, `llmos generate` and `llmos export`
run. Loaded models are kept per context, so a chat session loads once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmos.core.errors import UsageError
from llmos.ops.context import Context
from llmos.ops.registry import operation
from llmos.spec.tasks import task_rules

if TYPE_CHECKING:
    from llmos.models.generation import Completion, SamplingParams
    from llmos.models.llm import LLM

EXPORT_FORMATS = ("merged", "adapter")


def sampling_params(
    max_new_tokens: int, temperature: float, top_p: float, stop: list[str], seed: int | None
) -> SamplingParams:
    """Checked sampling settings (`UsageError` naming the option at fault)."""
    from llmos.models.generation import SamplingParams

    return SamplingParams(max_new_tokens, temperature, top_p, list(stop), seed).check()


def load_llm(ctx: Context, ref: str, chat_template: str | None = None) -> LLM:
    """A generation model registered here, or a pretrained causal LM (alias, folder, hub id).
    `chat_template` (Jinja text, a file holding it, or `chatml`) is for causal LMs whose
    tokenizer has none; a registered model always uses the template it was trained with."""
    from llmos.models.llm import LLM
    from llmos.store.models import get_model, list_models, model_folder

    ctx.require("predict")
    if chat_template and Path(chat_template).is_file():
        chat_template = Path(chat_template).read_text(encoding="utf-8")
    key = f"llm\n{ref}\n{chat_template}" if chat_template else f"llm\n{ref}"
    if key in ctx.cache:
        cached: LLM = ctx.cache[key]
        return cached
    if "@" in ref or list_models(ctx.store, ref):
        row = get_model(ctx.store, ref)
        if not task_rules(row.task).generates:
            raise UsageError(
                f"{row.ref} is a {row.task} model; chat and generate need a generation model "
                "or a causal LM such as smollm2-135m"
            )
        llm = LLM.from_folder(model_folder(ctx.store, row), row.ref, ctx.settings.artifacts_dir)
    else:
        llm = LLM.from_pretrained(ref, ctx.settings.artifacts_dir, chat_template)
    ctx.cache[key] = llm
    return llm


@operation("predict")
def generate(
    ctx: Context,
    model: str,
    prompts: list[str],
    params: SamplingParams | None = None,
    *,
    system: str | None = None,
    raw: bool = False,
    stream: Any = None,
    chat_template: str | None = None,
) -> list[Completion]:
    """Answers to each prompt (one user message each, or raw text with `raw=True`), decoded
    together in one batch; `stream(text)` receives a single prompt's text as it grows."""
    from llmos.models.generation import SamplingParams

    llm = load_llm(ctx, model, chat_template)
    params = params or SamplingParams()
    if raw:
        ids = [list(llm.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    else:
        head = [{"role": "system", "content": system}] if system else []
        ids = [llm.format.prompt_ids([*head, {"role": "user", "content": p}]) for p in prompts]
    on_text = (lambda _i, text: stream(text)) if stream is not None and len(prompts) == 1 else None
    return llm.generator.generate(ids, [params] * len(prompts), on_text)


@operation("models:read")
def export(ctx: Context, model: str, fmt: str, out: str | os.PathLike[str]) -> Path:
    """Write a generation model as merged weights or as its adapter into the folder `out`."""
    from llmos.models.causal import export_model, load_generation_model
    from llmos.store.models import get_model, model_folder

    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"unknown export format {fmt!r}: use {' or '.join(EXPORT_FORMATS)}")
    row = get_model(ctx.store, model)
    if not task_rules(row.task).generates:
        raise UsageError(f"{row.ref} is a {row.task} model; export handles generation models")
    loaded = load_generation_model(model_folder(ctx.store, row), ctx.settings.artifacts_dir)
    return export_model(loaded, fmt, Path(out))
