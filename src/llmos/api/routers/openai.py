"""The OpenAI-compatible routes: `/v1/embeddings`, `/v1/chat/completions`,
`/v1/completions`, `/v1/models`. Request and response shapes follow OpenAI's API so
that its official clients work with nothing changed but `base_url`; `model` names a
deployment. Prompts are rendered by the model's own saved chat template (`LLM.format`)
and decoded by its batching `GenerationEngine`: no second template or generation loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from llmos.api.access import needs
from llmos.core.errors import UsageError


class EmbeddingRequest(BaseModel):
    model: str = Field(description="The deployment name")
    input: str | list[str] = Field(description="A text or a list of texts")
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None


class _Sampling(BaseModel):
    model: str = Field(description="The deployment name")
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=5, description="0 (the default here) decodes greedily")
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: Literal[1] = Field(1, description="Only one choice per request is supported")
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    user: str | None = None

    def params(self) -> Any:
        from llmos.models.generation import SamplingParams

        limit = getattr(self, "max_completion_tokens", None) or self.max_tokens
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return SamplingParams(
            max_new_tokens=limit or 256,
            temperature=self.temperature or 0.0,
            top_p=self.top_p if self.top_p is not None else 1.0,
            stop=stop,
            seed=self.seed,
        ).check()


class ChatRequest(_Sampling):
    messages: list[dict[str, Any]] = Field(description="OpenAI-format messages")
    max_completion_tokens: int | None = Field(None, ge=1)


class CompletionRequest(_Sampling):
    prompt: str = Field(description="Text to continue, without the chat template")


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


def _usage(done: Any) -> dict[str, int]:
    return {
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "total_tokens": done.prompt_tokens + done.completion_tokens,
    }


def router(allow: Any) -> APIRouter:
    """The OpenAI routes; `allow` is the policy dependency every route goes through."""
    router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"], dependencies=[Depends(allow)])

    @router.get("/models", openapi_extra=needs("deployments:read"))
    async def models(request: Request) -> dict[str, Any]:
        from llmos.store.deployments import list_deployments

        rows = await asyncio.to_thread(list_deployments, request.app.state.runtime.store)
        return {
            "object": "list",
            "data": [
                {
                    "id": r.name,
                    "object": "model",
                    "created": int(r.created_at.timestamp()),
                    "owned_by": "llmos",
                }
                for r in rows
            ],
        }

    @router.post("/embeddings", openapi_extra=needs("predict", deployment="body:model"))
    async def embeddings(body: EmbeddingRequest, request: Request) -> dict[str, Any]:
        runtime = request.app.state.runtime
        texts = [body.input] if isinstance(body.input, str) else body.input
        _, rows = await runtime.embed(body.model, texts)
        tokens = sum(n for _, n in rows)
        return embedding_response(body.model, [v for v, _ in rows], tokens, body.encoding_format)

    @router.post(
        "/chat/completions",
        response_model=None,
        openapi_extra=needs("predict", deployment="body:model", generative=True),
    )
    async def chat(body: ChatRequest, request: Request) -> Any:
        from llmos.modalities.chat import parse_messages

        runtime = request.app.state.runtime
        target, llm = await runtime.llm(body.model)
        params = body.params()
        messages = parse_messages(body.messages, "messages", need_answer=False)
        if messages[-1]["role"] == "assistant":
            raise UsageError("messages: the last message must be from the user (or system)")
        prompt = llm.format.prompt_ids(messages)
        logged = {"messages": json.dumps(body.messages, ensure_ascii=False)}
        return await _generate(runtime, llm, prompt, params, body, True, (target, logged))

    @router.post(
        "/completions",
        response_model=None,
        openapi_extra=needs("predict", deployment="body:model", generative=True),
    )
    async def completions(body: CompletionRequest, request: Request) -> Any:
        runtime = request.app.state.runtime
        target, llm = await runtime.llm(body.model)
        params = body.params()
        prompt = list(llm.tokenizer(body.prompt, add_special_tokens=False)["input_ids"])
        if not prompt:
            raise UsageError("prompt: give some text to continue")
        return await _generate(runtime, llm, prompt, params, body, False, (target, {"prompt": body.prompt}))

    return router


async def _generate(
    runtime: Any, llm: Any, prompt: list[int], params: Any, body: _Sampling, chat: bool, log: tuple[Any, Any]
) -> Any:
    """Generate (streamed or not); the answer is logged under the response `id`, the
    request id that feedback names (`log`: the target and the inputs to record)."""
    runtime.start_generation()
    try:
        handle = runtime.engine(llm).submit(prompt, params)
    except BaseException:
        runtime.end_generation()
        raise
    ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    kind = "chat.completion" if chat else "text_completion"
    if not body.stream:
        try:
            done = await runtime.wait(handle.future)
        finally:
            runtime.end_generation()
        runtime.record_answer(ident, body.model, log[0], log[1], done.text)
        choice: dict[str, Any] = {"index": 0, "finish_reason": done.finish_reason, "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": done.text}
        else:
            choice["text"] = done.text
        return {
            "id": ident,
            "object": kind,
            "created": created,
            "model": body.model,
            "choices": [choice],
            "usage": _usage(done),
        }

    def chunk(delta: str | None, finish: str | None = None, first: bool = False) -> str:
        if chat:
            part: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
            if delta:
                part["content"] = delta
            choice = {"index": 0, "delta": part, "finish_reason": finish, "logprobs": None}
            obj = "chat.completion.chunk"
        else:
            choice = {"index": 0, "text": delta or "", "finish_reason": finish, "logprobs": None}
            obj = "text_completion"
        return (
            "data: "
            + json.dumps(
                {"id": ident, "object": obj, "created": created, "model": body.model, "choices": [choice]}
            )
            + "\n\n"
        )

    async def events() -> AsyncIterator[str]:
        from starlette.concurrency import iterate_in_threadpool

        try:
            if chat:
                yield chunk(None, first=True)
            async for text in iterate_in_threadpool(handle.stream()):
                yield chunk(text)
            done = handle.result(runtime.config.timeout_s)
            runtime.record_answer(ident, body.model, log[0], log[1], done.text)
            yield chunk(None, done.finish_reason)
            if (body.stream_options or {}).get("include_usage"):
                usage = {"id": ident, "object": kind + (".chunk" if chat else ""), "created": created,
                         "model": body.model, "choices": [], "usage": _usage(done)}  # fmt: skip
                yield "data: " + json.dumps(usage) + "\n\n"
        except Exception as exc:  # headers are sent: report the failure in the stream
            yield "data: " + json.dumps({"error": {"message": str(exc), "type": type(exc).__name__}}) + "\n\n"
        finally:
            runtime.end_generation()
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
