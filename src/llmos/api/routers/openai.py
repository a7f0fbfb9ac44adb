"""The OpenAI-compatible routes: `/v1/embeddings`, `/v1/chat/completions`,
`/v1/completions`, `/v1/models`. Request and response shapes follow OpenAI's API so
that its official clients work with nothing changed but `base_url`; `model` names a
deployment. Prompts are rendered by the model's own saved chat template (`LLM.format`)
and decoded by its batching `GenerationEngine`: no second template or generation loop.

What is not implemented is refused with a 400 naming the field (`logprobs`, `tools`,
`response_format`, ...), never silently ignored. Every generation is bounded: `max_tokens`
by the model's context and the server's `--max-new-tokens`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal, cast

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from llmos.api.access import needs
from llmos.core.errors import LlmosError, NotFoundError, UsageError
from llmos.serve.errors import BadRequest, RequestTimeout


class EmbeddingRequest(BaseModel):
    model: str = Field(description="The deployment name")
    input: str | list[str] = Field(description="A text or a list of texts")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(
        None, ge=1, description="Keep the first N dimensions, renormalised to unit length"
    )
    user: str | None = None


class _Sampling(BaseModel):
    model: str = Field(description="The deployment name")
    max_tokens: int | None = Field(
        None, ge=1, description="At most this many new tokens (bounded by the context and the server)"
    )
    temperature: float | None = Field(None, ge=0, le=2, description="0 (the default here) decodes greedily")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling; a tiny value is greedy")
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1, le=16, description="Choices per prompt")
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    presence_penalty: float | None = Field(None, description="Not supported: only 0 or absent")
    frequency_penalty: float | None = Field(None, description="Not supported: only 0 or absent")
    logit_bias: dict[str, float] | None = Field(None, description="Not supported: only empty or absent")
    user: str | None = None

    def refuse_unsupported(self) -> None:
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name):
                raise BadRequest(f"{name}: not supported by this server; leave it out or 0", name)
        if self.logit_bias:
            raise BadRequest("logit_bias: not supported by this server; leave it out", "logit_bias")

    def params(self, prompt_tokens: int, context: int | None, server_max: int, seed: int | None) -> Any:
        """The sampling parameters, `max_tokens` checked against the server's limit and
        what the model's context leaves after the prompt (OpenAI's 400s)."""
        from llmos.models.generation import SamplingParams

        asked = getattr(self, "max_completion_tokens", None) or self.max_tokens
        field = "max_completion_tokens" if getattr(self, "max_completion_tokens", None) else "max_tokens"
        if asked is not None and asked > server_max:
            raise BadRequest(
                f"{field}: {asked} is more than this server's limit of {server_max} new tokens "
                "(llmos serve --max-new-tokens)",
                field,
            )
        room = server_max if context is None else min(server_max, context - prompt_tokens)
        if room < 1 or (asked is not None and context is not None and prompt_tokens + asked > context):
            raise BadRequest(
                f"this model's maximum context length is {context} tokens; the prompt has {prompt_tokens} "
                f"and {field} asks for {asked or 1} more: shorten the prompt or lower {field}",
                "messages" if isinstance(self, ChatRequest) else "prompt",
                "context_length_exceeded",
            )
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return SamplingParams(
            max_new_tokens=asked or room,
            temperature=self.temperature or 0.0,
            top_p=self.top_p if self.top_p is not None else 1.0,
            stop=stop,
            seed=seed,
        ).check()


class ChatRequest(_Sampling):
    messages: list[dict[str, Any]] = Field(
        description="OpenAI-format messages (system, developer, user, assistant); content is a text "
        "or a list of text parts"
    )
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = Field(None, description="Not supported: only false or absent")
    top_logprobs: int | None = Field(None, description="Not supported: leave it out")
    response_format: dict[str, Any] | None = Field(None, description='Only {"type": "text"}')
    tools: list[dict[str, Any]] | None = Field(None, description="Not supported: only empty or absent")
    tool_choice: str | dict[str, Any] | None = Field(None, description='Not supported: only "none"')
    functions: list[dict[str, Any]] | None = Field(None, description="Not supported")
    parallel_tool_calls: bool | None = None

    def refuse_unsupported(self) -> None:
        super().refuse_unsupported()
        if self.logprobs:
            raise BadRequest("logprobs: log probabilities are not supported by this server", "logprobs")
        if self.top_logprobs is not None:
            raise BadRequest(
                "top_logprobs: log probabilities are not supported by this server", "top_logprobs"
            )
        if self.response_format and self.response_format.get("type") != "text":
            kind = self.response_format.get("type")
            raise BadRequest(
                f"response_format: {kind!r} is not supported by this server; only 'text'", "response_format"
            )
        if self.tools or self.functions:
            field = "tools" if self.tools else "functions"
            raise BadRequest(f"{field}: tool and function calling are not supported by this server", field)
        if self.tool_choice not in (None, "none"):
            raise BadRequest("tool_choice: tool calling is not supported by this server", "tool_choice")


class CompletionRequest(_Sampling):
    prompt: str | list[str] | list[int] | list[list[int]] = Field(
        description="Text to continue, without the chat template; or a list of texts; or token ids"
    )
    logprobs: int | None = Field(None, description="Not supported: leave it out")
    echo: bool = Field(False, description="Not supported: only false")
    suffix: str | None = Field(None, description="Not supported: leave it out")
    best_of: int | None = Field(None, description="Not supported: only 1 or absent")

    def refuse_unsupported(self) -> None:
        super().refuse_unsupported()
        if self.logprobs is not None:
            raise BadRequest("logprobs: log probabilities are not supported by this server", "logprobs")
        if self.echo:
            raise BadRequest("echo: echoing the prompt is not supported by this server", "echo")
        if self.suffix is not None:
            raise BadRequest("suffix: insertion is not supported by this server", "suffix")
        if self.best_of not in (None, 1):
            raise BadRequest("best_of: only 1 is supported by this server", "best_of")


def chat_messages(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI's message forms reduced to `{role, content: text}`: the `developer` role is the
    system prompt, and a content given as a list of text parts is their text joined."""
    out = []
    for i, message in enumerate(raw):
        if not isinstance(message, dict):
            out.append(message)
            continue
        message = dict(message)
        if message.get("role") == "developer":
            message["role"] = "system"
        content = message.get("content")
        if isinstance(content, list):
            texts = []
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind != "text" or not isinstance(part.get("text"), str):
                    raise BadRequest(
                        f"messages[{i}].content[{j}]: only text parts are supported, not {kind!r}",
                        f"messages[{i}].content[{j}].type",
                    )
                texts.append(part["text"])
            message["content"] = "\n".join(texts)
        out.append(message)
    return out


def embedding_response(name: str, vectors: list[list[float]], tokens: int, fmt: str) -> dict[str, Any]:
    import numpy as np

    def encode(v: list[float]) -> Any:
        if fmt == "base64":
            return base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode()
        return v

    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)],
        "model": name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def shorten(vectors: list[list[float]], dimensions: int | None) -> list[list[float]]:
    """The first `dimensions` of each vector, renormalised to unit length (what OpenAI does
    for its models that support `dimensions`)."""
    if dimensions is None:
        return vectors
    width = len(vectors[0]) if vectors else 0
    if dimensions > width:
        raise BadRequest(f"dimensions: {dimensions} is more than the model's {width}", "dimensions")
    out = []
    for v in vectors:
        cut = v[:dimensions]
        norm = sum(x * x for x in cut) ** 0.5 or 1.0
        out.append([x / norm for x in cut])
    return out


def _usage(prompts: list[list[int]], done: list[Any]) -> dict[str, int]:
    prompt = sum(len(p) for p in prompts)
    completion = sum(d.completion_tokens for d in done)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _model_not_found(exc: NotFoundError) -> NotFoundError:
    if exc.code == "model_not_found":
        exc.param = "model"
    return exc


# chat and completions answer JSON, or server-sent events with `stream: true`
GENERATED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The completion, or with `stream` its chunks as server-sent events",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    }
}


def router(allow: Any) -> APIRouter:
    """The OpenAI routes; `allow` is the policy dependency every route goes through."""
    router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"], dependencies=[Depends(allow)])

    def model_card(row: Any) -> dict[str, Any]:
        return {
            "id": row.name,
            "object": "model",
            "created": int(row.created_at.timestamp()),
            "owned_by": "llmos",
        }

    @router.get("/models", openapi_extra=needs("deployments:read"))
    async def models(request: Request) -> dict[str, Any]:
        from llmos.api.dependencies import context
        from llmos.ops.deployments import deployments

        rows = await asyncio.to_thread(deployments, context(request))
        return {"object": "list", "data": [model_card(r) for r in rows]}

    @router.get("/models/{model}", openapi_extra=needs("deployments:read", deployment="path:model"))
    async def model(model: str, request: Request) -> dict[str, Any]:
        from llmos.api.dependencies import context
        from llmos.ops.deployments import deployments

        rows = await asyncio.to_thread(deployments, context(request))
        row = next((r for r in rows if r.name == model), None)
        if row is None:
            missing = NotFoundError(f"model {model!r} not found: no deployment of that name")
            missing.param, missing.code = "model", "model_not_found"
            raise missing
        return model_card(row)

    @router.post("/embeddings", openapi_extra=needs("predict", deployment="body:model"))
    async def embeddings(body: EmbeddingRequest, request: Request) -> dict[str, Any]:
        runtime = request.app.state.runtime
        texts = [body.input] if isinstance(body.input, str) else body.input
        try:
            _, rows = await runtime.embed(body.model, texts)
        except NotFoundError as exc:
            raise _model_not_found(exc) from None
        tokens = sum(n for _, n in rows)
        vectors = shorten([v for v, _ in rows], body.dimensions)
        return embedding_response(body.model, vectors, tokens, body.encoding_format)

    @router.post(
        "/chat/completions",
        response_model=None,
        responses=GENERATED,
        openapi_extra=needs("predict", deployment="body:model", generative=True),
    )
    async def chat(body: ChatRequest, request: Request, response: Response) -> Any:
        from llmos.modalities.chat import parse_messages

        body.refuse_unsupported()
        messages = parse_messages(chat_messages(body.messages), "messages", need_answer=False)
        if messages[-1]["role"] == "assistant":
            raise UsageError("messages: the last message must be from the user (or system)")
        runtime = request.app.state.runtime
        target, llm = await _llm(runtime, body.model)
        prompt = llm.format.prompt_ids(messages)
        logged = {"messages": json.dumps(body.messages, ensure_ascii=False)}
        return await _generate(runtime, llm, [prompt], body, True, (target, logged), request, response)

    @router.post(
        "/completions",
        response_model=None,
        responses=GENERATED,
        openapi_extra=needs("predict", deployment="body:model", generative=True),
    )
    async def completions(body: CompletionRequest, request: Request, response: Response) -> Any:
        body.refuse_unsupported()
        runtime = request.app.state.runtime
        target, llm = await _llm(runtime, body.model)
        given: list[Any] = list(body.prompt) if isinstance(body.prompt, list) else [body.prompt]
        if given and all(isinstance(t, int) for t in given):
            given = [given]  # one prompt of token ids
        if not given:
            raise UsageError("prompt: give some text to continue")
        runtime.check_inputs(given, "prompt")
        prompts = []
        for i, one in enumerate(given):
            ids = (
                list(one)
                if isinstance(one, list)
                else list(llm.tokenizer(one, add_special_tokens=False)["input_ids"])
            )
            vocab = len(llm.tokenizer)
            if not ids:
                raise UsageError(f"prompt{f'[{i}]' if len(given) > 1 else ''}: give some text to continue")
            if any(not 0 <= t < vocab for t in ids):
                raise BadRequest(f"prompt[{i}]: token ids must be between 0 and {vocab - 1}", "prompt")
            prompts.append(ids)
        logged = {"prompt": body.prompt if isinstance(body.prompt, str) else json.dumps(body.prompt)}
        return await _generate(runtime, llm, prompts, body, False, (target, logged), request, response)

    return router


async def _llm(runtime: Any, name: str) -> tuple[Any, Any]:
    try:
        return await runtime.llm(name)
    except NotFoundError as exc:
        raise _model_not_found(exc) from None


async def _generate(
    runtime: Any,
    llm: Any,
    prompts: list[list[int]],
    body: _Sampling,
    chat: bool,
    log: tuple[Any, Any],
    request: Request,
    response: Response,
) -> Any:
    """Generate `body.n` choices per prompt (streamed or not); the answers are logged under
    the response `id`, the request id that feedback names (`log`: the target and the inputs
    to record). A request that times out, or whose client goes away, cancels its
    generations, which leave the batch at the next decoding step."""
    context, limit = llm.generator.context, runtime.config.max_new_tokens
    jobs = []  # (prompt index, params) per choice, in choice order
    for i, prompt in enumerate(prompts):
        for k in range(body.n):
            seed = None if body.seed is None else body.seed + k
            jobs.append((i, body.params(len(prompt), context, limit, seed)))
    engine = runtime.engine(llm)
    handles: list[Any] = []
    started = 0
    try:
        for i, params in jobs:
            runtime.start_generation()
            started += 1
            handles.append(engine.submit(prompts[i], params))
    except BaseException:
        for handle in handles:
            handle.cancel()
        for _ in range(started):
            runtime.end_generation()
        raise
    ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    kind = "chat.completion" if chat else "text_completion"

    def finished(done: list[Any]) -> None:
        for index, d in enumerate(done):
            runtime.record_answer(ident, body.model, log[0], log[1], d.text, index)

    if not body.stream:
        response.headers["x-request-id"] = ident
        try:
            done = list(await asyncio.gather(*(runtime.wait(h.future, request) for h in handles)))
        except BaseException:
            for handle in handles:
                handle.cancel()
            raise
        finally:
            for _ in jobs:
                runtime.end_generation()
        finished(done)
        choices = []
        for index, d in enumerate(done):
            choice: dict[str, Any] = {"index": index, "finish_reason": d.finish_reason, "logprobs": None}
            if chat:
                choice["message"] = {"role": "assistant", "content": d.text}
            else:
                choice["text"] = d.text
            choices.append(choice)
        return {
            "id": ident,
            "object": kind,
            "created": created,
            "model": body.model,
            "choices": choices,
            "usage": _usage(prompts, done),
        }

    def chunk(index: int, delta: str | None, finish: str | None = None, first: bool = False) -> str:
        if chat:
            part: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
            if delta:
                part["content"] = delta
            choice = {"index": index, "delta": part, "finish_reason": finish, "logprobs": None}
            obj = "chat.completion.chunk"
        else:
            choice = {"index": index, "text": delta or "", "finish_reason": finish, "logprobs": None}
            obj = "text_completion"
        event = {"id": ident, "object": obj, "created": created, "model": body.model, "choices": [choice]}
        return "data: " + json.dumps(event) + "\n\n"

    async def events() -> AsyncIterator[str]:
        from starlette.concurrency import iterate_in_threadpool

        merged: asyncio.Queue[tuple[int, str | None, BaseException | None]] = asyncio.Queue()

        async def pump(index: int, handle: Any) -> None:
            try:
                async for text in iterate_in_threadpool(handle.stream()):
                    await merged.put((index, text, None))
                await merged.put((index, None, None))
            except BaseException as exc:
                await merged.put((index, None, exc))

        tasks = [asyncio.ensure_future(pump(i, h)) for i, h in enumerate(handles)]
        try:
            if chat:
                for index in range(len(handles)):
                    yield chunk(index, None, first=True)
            open_, failure = len(handles), cast(BaseException | None, None)
            while open_:
                try:  # the timeout bounds the wait for the next piece of text
                    index, text, error = await asyncio.wait_for(merged.get(), runtime.config.timeout_s)
                except TimeoutError:
                    failure = RequestTimeout(
                        f"no text for {runtime.config.timeout_s:g} s; retry or raise --timeout"
                    )
                    break
                if error is not None:
                    failure = error
                    break
                if text is None:
                    open_ -= 1
                else:
                    yield chunk(index, text)
            if failure is not None:  # headers are sent: report the failure in the stream
                yield "data: " + json.dumps({"error": _stream_error(failure)}) + "\n\n"
            else:
                done = [h.result(0) for h in handles]
                finished(done)
                for index, d in enumerate(done):
                    yield chunk(index, None, d.finish_reason)
                if (body.stream_options or {}).get("include_usage"):
                    usage = {"id": ident, "object": kind + (".chunk" if chat else ""), "created": created,
                             "model": body.model, "choices": [], "usage": _usage(prompts, done)}  # fmt: skip
                    yield "data: " + json.dumps(usage) + "\n\n"
            yield "data: [DONE]\n\n"
        finally:  # also when the client went away (the task is cancelled at a yield)
            for handle in handles:
                handle.cancel()
            for task in tasks:
                task.cancel()
            for _ in jobs:
                runtime.end_generation()

    return StreamingResponse(events(), media_type="text/event-stream", headers={"x-request-id": ident})


def _stream_error(exc: BaseException) -> dict[str, Any]:
    from llmos.api.errors import error_body, error_of

    if isinstance(exc, LlmosError):
        return error_of(exc)["error"]
    return error_body(str(exc), type(exc).__name__, 500)["error"]
