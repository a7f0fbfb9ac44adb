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
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

import torch

from llmos.core.errors import ServiceUnavailable, UsageError
from llmos.models.kv_batch import RunningBatch

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
    next: int = -1  # the token the next decoding step feeds
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
        rows = [self.new_row(i, prompt, p) for i, (prompt, p) in enumerate(zip(prompts, params))]
        if self.prompt_learning:
            return self._generate_prompt_learning(prompts, rows, on_text, abort)
        batch = RunningBatch(self.model, self.pad_id)
        active = self.admit(batch, [], rows, prompts, on_text, abort)
        while active:
            active = self.step(batch, active, on_text, abort)
        return _completions(rows)

    def new_row(self, index: int, prompt: Sequence[int], params: SamplingParams) -> _Row:
        params.check()
        self.check_prompt(prompt, params)
        gen = torch.Generator().manual_seed(params.seed) if params.seed is not None else None
        return _Row(index, len(prompt), params, gen)

    def admit(
        self,
        batch: RunningBatch,
        active: list[_Row],
        rows: Sequence[_Row],
        prompts: Sequence[Sequence[int]],
        on_text: TextCallback | None = None,
        abort: Callable[[int], BaseException | None] | None = None,
    ) -> list[_Row]:
        """Prefill `rows` into `batch` after the `active` ones and sample their first token;
        return the rows still running (finished ones have left the batch)."""
        logits = batch.add(prompts)
        self._take(logits, list(rows), on_text, abort)
        return self._leave(batch, [*active, *rows])

    def step(
        self,
        batch: RunningBatch,
        active: list[_Row],
        on_text: TextCallback | None = None,
        abort: Callable[[int], BaseException | None] | None = None,
    ) -> list[_Row]:
        """One decoding step of every active row; return the rows still running."""
        logits = batch.step([row.next for row in active])
        self._take(logits, active, on_text, abort)
        return self._leave(batch, active)

    def _take(
        self,
        logits: torch.Tensor,
        rows: list[_Row],
        on_text: TextCallback | None,
        abort: Callable[[int], BaseException | None] | None,
    ) -> None:
        tokens = self._sample(logits, rows)
        for row, token in zip(rows, tokens):
            self._advance(row, token, on_text)
            row.next = token
            if abort is not None and row.finish is None and (error := abort(row.index)) is not None:
                row.error, row.finish = error, "error"

    @staticmethod
    def _leave(batch: RunningBatch, active: list[_Row]) -> list[_Row]:
        """Finished rows leave the batch and its cache."""
        keep = [i for i, row in enumerate(active) if row.finish is None]
        batch.keep(keep)
        return [active[i] for i in keep]

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
    """Continuous batching of concurrent requests in a background thread: a request joins
    the running batch at the next decoding step (its prompt is prefilled and its cache
    stacked under the running rows, `RunningBatch`), and a finished one leaves it at once,
    up to `max_batch` rows. When the engine is idle it waits up to `max_wait_ms` after a
    first request for others to prefill with it.

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
        # rows in the batch at each decoding step (the latest ones), for metrics and tests
        self.batches: deque[int] = deque(maxlen=10_000)
        self.running = 0  # rows decoding now
        self.steps = 0  # decoding steps run so far
        self._live: dict[int, _Request] = {}  # the decoding thread's requests by row index

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
        live = self._live = {}
        try:
            with torch.inference_mode():
                self._loop()
        except BaseException as exc:  # not expected: say so in healthz, fail what waits
            self.failure = f"{type(exc).__name__}: {exc}"
            logging.getLogger("llmos.serve").exception("the generation engine died", exc_info=exc)
            error = GenerationStopped(f"the generation engine failed ({self.failure})")
            for request in live.values():
                request.finish(error=error)
            while True:
                try:
                    queued = self._pending.get_nowait()
                except queue.Empty:
                    break
                if queued is not None:
                    queued.finish(error=error)
        finally:
            self.running = 0

    def _loop(self) -> None:
        """Admit, decode one step, let finished rows go; `_live` maps each row's index to its
        request (`_run` fails them if this dies)."""
        live, gen = self._live, self.generator
        batch = RunningBatch(gen.model, gen.pad_id)
        active: list[_Row] = []
        waiting: deque[_Request] = deque()  # taken from the queue, not admitted yet
        closing = False
        counter = 0

        def on_text(i: int, text: str) -> None:
            live[i].chunks.put(text)

        def abort(i: int) -> BaseException | None:
            if live[i].future.cancelled():
                return GenerationStopped("cancelled")
            return self._stopped()

        while True:
            if not active and not waiting:
                if closing:
                    return
                closing = self._collect(waiting, block=True)
            elif not closing:
                closing = self._collect(waiting, block=False)
            # newcomers join the running batch (a cache that cannot take rows while others
            # run makes them wait for the batch to drain)
            room = self.max_batch - len(active)
            if waiting and room > 0 and (not active or batch.joinable):
                rows: list[_Row] = []
                prompts: list[list[int]] = []
                while waiting and len(rows) < room:
                    request = waiting.popleft()
                    row = self._start(request, counter)
                    if row is None:
                        continue
                    live[counter] = request
                    counter += 1
                    if gen.prompt_learning:  # decoded alone, through peft's own generate
                        done = gen._generate_prompt_learning([request.prompt], [row], on_text, abort)
                        self._finish(live, [row], done)
                        continue
                    rows.append(row)
                    prompts.append(request.prompt)
                if rows:
                    self.batches.append(len(active) + len(rows))
                    before = active
                    try:
                        active = gen.admit(batch, active, rows, prompts, on_text, abort)
                    except Exception as exc:  # a failed forward pass fails the rows in it
                        active = self._fail_batch(batch, live, [*active, *rows], exc)
                    self._finish(live, [*before, *rows], None, still=active)
            if active:
                self.batches.append(len(active))
                self.running = len(active)
                before = active
                try:
                    active = gen.step(batch, active, on_text, abort)
                except Exception as exc:
                    active = self._fail_batch(batch, live, active, exc)
                self.steps += 1
                self._finish(live, before, None, still=active)
            self.running = len(active)

    def _collect(self, waiting: deque[_Request], block: bool) -> bool:
        """Move queued requests into `waiting` (when idle, wait for a first one and up to
        `max_wait` for more); True once `close()` asked the loop to end."""
        if block:
            first = self._pending.get()
            if first is None:
                return True
            waiting.append(first)
            deadline = time.monotonic() + self.max_wait
            while len(waiting) < self.max_batch:
                try:
                    nxt = self._pending.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    return False
                if nxt is None:
                    return True
                waiting.append(nxt)
            return False
        while True:
            try:
                nxt = self._pending.get_nowait()
            except queue.Empty:
                return False
            if nxt is None:
                return True
            waiting.append(nxt)

    def _start(self, request: _Request, index: int) -> _Row | None:
        """The request's row, or None when it was given up while queued or cannot run."""
        error = self._stopped()
        row = None
        if error is None and not request.future.cancelled():
            try:
                row = self.generator.new_row(index, request.prompt, request.params)
            except Exception as exc:
                error = exc
        if row is None:
            request.finish(error=error)
        return row

    def _finish(
        self,
        live: dict[int, _Request],
        rows: Sequence[_Row],
        results: list[Completion] | None,
        still: Sequence[_Row] = (),
    ) -> None:
        """Resolve the requests of the `rows` that are done (not in `still`)."""
        running = {id(r) for r in still}
        done = [r for r in rows if id(r) not in running]
        for row, result in zip(done, results or _completions(done)):
            request = live.pop(row.index, None)
            if request is not None:
                request.finish(result, result.error)

    @staticmethod
    def _fail_batch(
        batch: RunningBatch, live: dict[int, _Request], rows: Sequence[_Row], exc: Exception
    ) -> list[_Row]:
        """The batch's requests fail with `exc`; the engine keeps running, with an empty batch."""
        for row in rows:
            if row.finish is None:
                row.error, row.finish = exc, "error"
        batch.keep([])
        return []
