"""Text generation: batched decoding with a KV cache, per-request sampling, streaming.

`model.generate` runs one sampling configuration for a whole batch and returns when the
longest sequence ends, so servers usually call it once per request. On a CPU (and on a
GPU with a small model) one decoding step costs about the same for 1 or 8 sequences,
because it is bound by reading the weights: decoding concurrent requests together is
where the throughput is. `Generator.generate` decodes a batch of prompts, each with its
own temperature, top-p, token limit and stop sequences, drops finished rows from the
batch and its cache, and streams each row's new text through a callback.
`GenerationEngine` collects requests from many threads into such batches.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

import torch

from llmos.core.errors import ServiceUnavailable, UsageError

TextCallback = Callable[[int, str], None]


# below this a temperature or top-p keeps only the most likely token: decode greedily
# (dividing by a tiny temperature overflows, a tiny top-p rounds to 0 in float32)
GREEDY_BELOW = 1e-6


@dataclass
class SamplingParams:
    """How one request is decoded; `temperature` 0 is greedy decoding (OpenAI's range,
    0 to 2), `top_p` in (0, 1] (a tiny value decodes greedily too)."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None

    def check(self) -> SamplingParams:
        if self.max_new_tokens < 1:
            raise UsageError(f"max_new_tokens must be >= 1, not {self.max_new_tokens}")
        if not 0 <= self.temperature <= 2:
            raise UsageError(f"temperature must be between 0 and 2, not {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UsageError(f"top_p must be in (0, 1], not {self.top_p}")
        if any(not s for s in self.stop):
            raise UsageError("stop sequences must not be empty")
        return self


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of turn or a stop sequence) or "length"
    error: BaseException | None = None  # this row failed (or was stopped); the others did not


@dataclass
class _Row:
    index: int
    prompt_len: int
    params: SamplingParams
    generator: torch.Generator | None
    tokens: list[int] = field(default_factory=list)
    emitted: int = 0
    text: str = ""
    finish: str | None = None
    error: BaseException | None = None


def _held_back(text: str, stops: Sequence[str]) -> int:
    """Characters at the end of `text` that may be the start of a stop sequence."""
    hold = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:n]):
                hold = max(hold, n)
                break
    return hold


def prefill(model: Any, ids: torch.Tensor, mask: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """Run left-padded prompts through `model` into a fresh KV cache; return the output
    (logits of the last position, `.cache`) and each row's position ids."""
    from transformers import DynamicCache

    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        cache=DynamicCache(config=model.config),
        use_cache=True,
        logits_to_keep=1,
    )
    return out, positions


class Generator:
    """Decodes batches of token prompts with one causal LM."""

    def __init__(self, lm: Any, tokenizer: Any, stop_texts: Sequence[str] = ()) -> None:
        from llmos.models.causal import base_of, context_length, is_prompt_learning

        self.lm = lm
        self.tokenizer = tokenizer
        self.model = base_of(lm)
        self.prompt_learning = is_prompt_learning(lm)
        self.context = context_length(lm)
        self.device = next(self.model.parameters()).device
        eos: set[int] = set()
        for source in (tokenizer.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)):
            if isinstance(source, int):
                eos.add(source)
            elif source:
                eos.update(int(t) for t in source)
        for text in stop_texts:  # a template's end-of-turn marker, when it is one token
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(ids) == 1:
                eos.add(int(ids[0]))
        self.eos = eos
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos or {0})
        self.pad_id = int(pad)

    def check_prompt(self, prompt: Sequence[int], params: SamplingParams) -> None:
        if self.context is not None and len(prompt) >= self.context:
            error = UsageError(
                f"the prompt has {len(prompt)} tokens; the model's context is {self.context}: shorten it"
            )
            error.code = "context_length_exceeded"
            raise error

    def _sample(self, logits: torch.Tensor, rows: Sequence[_Row]) -> list[int]:
        """One token per row; a row whose sampling fails gets -1 and its error (the others
        of the batch go on)."""
        out = []
        for i, row in enumerate(rows):
            try:
                out.append(self._sample_one(logits[i].float(), row))
            except Exception as exc:
                row.error, row.finish = exc, "error"
                out.append(-1)
        return out

    @staticmethod
    def _sample_one(scores: torch.Tensor, row: _Row) -> int:
        p = row.params
        if p.temperature < GREEDY_BELOW or p.top_p < GREEDY_BELOW:
            return int(scores.argmax())
        probs = torch.softmax(scores / p.temperature, dim=-1)
        if p.top_p < 1:
            sorted_probs, order = probs.sort(descending=True)
            keep = sorted_probs.cumsum(-1) - sorted_probs < p.top_p
            keep[0] = True  # the most likely token always stays
            probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
        if not bool(torch.isfinite(probs).all()) or float(probs.sum()) <= 0:
            return int(scores.argmax())
        return int(torch.multinomial(probs, 1, generator=row.generator))

    def _advance(self, row: _Row, token: int, on_text: TextCallback | None) -> None:
        """Append one token; detect the end; stream the text that is now final."""
        if row.finish is not None:  # failed while sampling
            return
        if token in self.eos:
            row.finish = "stop"
        else:
            row.tokens.append(token)
            row.text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
            for stop in row.params.stop:
                at = row.text.find(stop)
                if at >= 0:
                    row.text, row.finish = row.text[:at], "stop"
            if row.finish is None and len(row.tokens) >= row.params.max_new_tokens:
                row.finish = "length"
            if row.finish is None and self.context and row.prompt_len + len(row.tokens) >= self.context:
                row.finish = "length"
        final = row.text if row.finish else row.text[: len(row.text) - _held_back(row.text, row.params.stop)]
        if not row.finish and final.endswith("\ufffd"):  # half of a multi-byte character
            return
        if on_text is not None and len(final) > row.emitted:
            on_text(row.index, final[row.emitted :])
        row.emitted = max(row.emitted, len(final))

    @torch.inference_mode()
    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        params: Sequence[SamplingParams],
        on_text: TextCallback | None = None,
        abort: Callable[[int], BaseException | None] | None = None,
    ) -> list[Completion]:
        """Decode every prompt; `on_text(i, delta)` receives prompt i's text as it grows.
        Before each decoding step `abort(i)` may return an error for prompt i (its caller
        gave up, the server is stopping): that row leaves the batch with the error."""
        rows = []
        for i, (prompt, p) in enumerate(zip(prompts, params)):
            p.check()
            self.check_prompt(prompt, p)
            gen = torch.Generator().manual_seed(p.seed) if p.seed is not None else None
            rows.append(_Row(i, len(prompt), p, gen))
        if self.prompt_learning:
            return self._generate_prompt_learning(prompts, rows, on_text, abort)
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):  # left padding: every row's next token is at the end
            ids[i, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
            mask[i, width - len(prompt) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        out, positions = prefill(self.model, ids, mask)
        active = list(rows)
        while True:
            tokens = self._sample(out.logits[:, -1], active)
            for row, token in zip(active, tokens):
                self._advance(row, token, on_text)
                if abort is not None and row.finish is None and (error := abort(row.index)) is not None:
                    row.error, row.finish = error, "error"
            keep = [i for i, row in enumerate(active) if row.finish is None]
            if not keep:
                break
            if len(keep) < len(active):  # finished rows leave the batch and the cache
                index = torch.tensor(keep, device=self.device)
                out.cache.batch_select_indices(index)
                mask, positions = mask[index], positions[index]
                tokens = [tokens[i] for i in keep]
                active = [active[i] for i in keep]
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            positions = positions[:, -1:] + 1
            out = self.model(
                input_ids=torch.tensor(tokens, device=self.device).unsqueeze(1),
                attention_mask=mask,
                position_ids=positions,
                cache=out.cache,
                use_cache=True,
            )
        return _completions(rows)

    def _generate_prompt_learning(
        self,
        prompts: Sequence[Sequence[int]],
        rows: list[_Row],
        on_text: TextCallback | None,
        abort: Callable[[int], BaseException | None] | None = None,
    ) -> list[Completion]:
        """Prefix and prompt tuning put virtual tokens before the input, which only peft's own
        `generate` knows how to do: decode each request alone through it."""
        for prompt, row in zip(prompts, rows):
            p = row.params
            if abort is not None and (error := abort(row.index)) is not None:
                row.error, row.finish = error, "error"
                continue
            greedy = p.temperature < GREEDY_BELOW or p.top_p < GREEDY_BELOW
            output = self.lm.generate(
                input_ids=torch.tensor([list(prompt)], device=self.device),
                attention_mask=torch.ones((1, len(prompt)), dtype=torch.long, device=self.device),
                max_new_tokens=p.max_new_tokens,
                do_sample=not greedy,
                temperature=None if greedy else p.temperature,
                top_p=None if greedy else p.top_p,
                eos_token_id=sorted(self.eos),
                pad_token_id=self.pad_id,
            )
            for token in output[0, len(prompt) :].tolist():
                self._advance(row, int(token), on_text)
                if row.finish:
                    break
        return _completions(rows)


def _completions(rows: Sequence[_Row]) -> list[Completion]:
    return [Completion(r.text, r.prompt_len, len(r.tokens), r.finish or "length", r.error) for r in rows]


class GenerationStopped(ServiceUnavailable):
    """A generation ended before its end: the engine is shutting down (the server is
    stopping) or it stopped working."""

    code = "server_shutting_down"


@dataclass
class _Request:
    prompt: list[int]
    params: SamplingParams
    future: Future[Completion]
    chunks: queue.Queue[str | None]

    def finish(self, result: Completion | None = None, error: BaseException | None = None) -> None:
        """Resolve the future, unless its caller cancelled it meanwhile (a timed-out or
        disconnected request): a cancelled future must not take a result."""
        try:
            if error is not None:
                self.future.set_exception(error)
            elif result is not None:
                self.future.set_result(result)
        except InvalidStateError:  # cancelled between our check and now
            pass
        self.chunks.put(None)


class GenerationHandle:
    """One submitted request: iterate `stream()` for text as it is made, or wait on `result()`;
    `cancel()` gives it up (its row leaves the batch at the next decoding step)."""

    def __init__(self, request: _Request) -> None:
        self._request = request

    def stream(self) -> Iterator[str]:
        while (chunk := self._request.chunks.get()) is not None:
            yield chunk
        self._request.future.result()  # re-raise a failure of the batch

    def result(self, timeout: float | None = None) -> Completion:
        return self._request.future.result(timeout)

    def cancel(self) -> None:
        self._request.future.cancel()

    @property
    def future(self) -> Future[Completion]:
        """The completion as a future (the server awaits it without holding a thread);
        cancelling it cancels the generation."""
        return self._request.future


class GenerationEngine:
    """Batches concurrent requests: waits up to `max_wait_ms` after the first for more, up to
    `max_batch`, and decodes them together in a background thread.

    A request whose future is cancelled (its caller timed out or went away) leaves the
    batch at the next decoding step. `stop(within_s)` ends generations still running
    `within_s` seconds later with `GenerationStopped` (a server's graceful shutdown).
    A request that fails (a bad parameter, a sampling error) fails alone."""

    def __init__(self, generator: Generator, max_batch: int = 16, max_wait_ms: float = 10.0) -> None:
        self.generator = generator
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self._pending: queue.Queue[_Request | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stop_at: float | None = None
        self.failure: str | None = None  # why the decoding thread died, if it did
        self.batches: list[int] = []  # sizes of the batches run, for metrics and tests

    @property
    def alive(self) -> bool:
        """False when the decoding thread died (healthz reports it)."""
        thread = self._thread
        return self.failure is None and (thread is None or thread.is_alive())

    def submit(self, prompt: Sequence[int], params: SamplingParams) -> GenerationHandle:
        params.check()
        self.generator.check_prompt(prompt, params)
        request = _Request(list(prompt), params, Future(), queue.Queue())
        with self._lock:
            if self._stop_at is not None:
                raise GenerationStopped("the server is shutting down; retry on another server or later")
            # queued first: a thread that dies from now on fails it on its way out
            self._pending.put(request)
            if self._thread is None or not self._thread.is_alive():  # first use, or it died
                self.failure = None
                self._thread = threading.Thread(target=self._run, name="llmos-generate", daemon=True)
                self._thread.start()
        return GenerationHandle(request)

    def stop(self, within_s: float = 0.0) -> None:
        """Take no more requests; end the ones still decoding `within_s` seconds from now."""
        with self._lock:
            self._stop_at = time.monotonic() + within_s

    def close(self) -> None:
        self.stop(0.0)
        with self._lock:
            thread = self._thread
            if thread is not None:
                self._pending.put(None)
        if thread is not None:
            thread.join()
        with self._lock:
            self._thread = None
            self._stop_at = None  # usable again (a model outlives a server in tests and notebooks)

    def _stopped(self) -> BaseException | None:
        if self._stop_at is not None and time.monotonic() >= self._stop_at:
            return GenerationStopped(
                "the server is shutting down: the generation was stopped before its end; retry"
            )
        return None

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # not expected: say so in healthz, fail what waits
            self.failure = f"{type(exc).__name__}: {exc}"
            logging.getLogger("llmos.serve").exception("the generation engine died", exc_info=exc)
            while True:
                try:
                    request = self._pending.get_nowait()
                except queue.Empty:
                    break
                if request is not None:
                    request.finish(error=GenerationStopped(f"the generation engine failed ({self.failure})"))

    def _loop(self) -> None:
        while True:
            first = self._pending.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    nxt = self._pending.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    self._pending.put(None)
                    break
                batch.append(nxt)
            self.batches.append(len(batch))
            self._run_batch(batch)

    def _run_batch(self, batch: list[_Request]) -> None:
        live = []
        for r in batch:  # requests given up while queued, or that cannot run, go first
            error = self._stopped()
            if error is None:
                try:
                    r.params.check()
                    self.generator.check_prompt(r.prompt, r.params)
                except Exception as exc:
                    error = exc
            if r.future.cancelled() or error is not None:
                r.finish(error=error)
            else:
                live.append(r)
        if not live:
            return

        def abort(i: int) -> BaseException | None:
            if live[i].future.cancelled():
                return GenerationStopped("cancelled")
            return self._stopped()

        try:
            results = self.generator.generate(
                [r.prompt for r in live],
                [r.params for r in live],
                on_text=lambda i, text: live[i].chunks.put(text),
                abort=abort,
            )
        except Exception as exc:  # the batch's requests fail; the engine keeps running
            for r in live:
                r.finish(error=exc)
            return
        for r, result in zip(live, results):
            r.finish(result, result.error)
