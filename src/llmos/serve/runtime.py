"""`ServeRuntime`: what the HTTP routes call. Deployments in, predictions out.

It ties the pieces together: the deployment table (read through a short cache, so a
re-point made by `llmos deploy` in another process shows up within `refresh_s`), the
`ModelPager` (memory), the `Batcher` (classifiers and embedders) and each LLM's
`GenerationEngine` (chat and completions). Requests resolve their deployment when they
arrive and keep that target to the end, which is what makes re-pointing seamless: old
requests finish on the old model, new ones go to the new one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from llmos.core.errors import NotFoundError, UsageError
from llmos.serve.batcher import Batcher
from llmos.serve.errors import InputTooLarge, ModelUnavailable, RequestTimeout, ServerBusy
from llmos.serve.pager import ModelPager
from llmos.serve.requestlog import RequestLog, new_request_id
from llmos.serve.targets import Target, resolve_target
from llmos.serve.traffic import TrafficRing
from llmos.store.db import Store
from llmos.store.deployments import DEPLOYMENT_KINDS, find_deployment
from llmos.store.schema import Deployment
from llmos.store.scope import current_project


@dataclass
class ServeConfig:
    """Limits and batching of one server (the options of `llmos serve`)."""

    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 256
    timeout_s: float = 60.0
    max_inputs: int = 256
    max_input_chars: int = 20_000
    adapter_budget_mb: float = 512.0
    max_adapters: int = 64
    refresh_s: float = 1.0
    max_generations: int = 64
    # the most tokens one chat or completion may generate (`--max-new-tokens`); the
    # model's context bounds it too
    max_new_tokens: int = 2048
    max_body_bytes: int = 8 * 2**20
    # a dataset upload (POST /v1/datasets), streamed to disk: its own, larger limit
    max_upload_bytes: int = 512 * 2**20
    # rows per forward pass inside a batch, sorted by length: on a CPU, MiniLM costs 9.5 ms
    # a text in length-sorted groups of 8, 25 ms alone and 28 ms in one padded group of 128
    model_batch_size: int = 8
    # batch worker threads per base model; whole models run that many batches at once
    workers: int = 1
    # addresses (or networks) of proxies whose X-Forwarded-For the server believes
    # (`--trusted-proxy`); none by default: the connection's own address is the client's
    trusted_proxies: tuple[str, ...] = ()
    # a client refused for failed authentications that keeps knocking (more than the
    # limit's refusals in one burst) gets its 429 this much later: a keep-alive flood
    # then sends one request per connection per delay (`benchmarks/bench_flood.py`)
    refusal_delay_s: float = 1.0


def _key(project: str, name: str) -> str:
    """Deployments are named per project: the resolved cache holds both."""
    return f"{project}/{name}"


@dataclass
class _Resolved:
    seen: float
    row: Deployment
    target: Target


class ServeRuntime:
    def __init__(self, store: Store, config: ServeConfig | None = None) -> None:
        self.store = store
        self.config = config = config or ServeConfig()
        self.pager = ModelPager(
            store.settings.artifacts_dir,
            int(config.adapter_budget_mb * 2**20),
            config.max_adapters,
            config.model_batch_size,
        )
        self.batcher = Batcher(
            self._run,
            config.max_batch,
            config.max_wait_ms,
            config.max_queue,
            self._on_batch,
            config.workers,
            self._run_groups,
        )
        self._resolved: dict[str, _Resolved] = {}
        self._lock = threading.Lock()
        self.generations = 0  # in flight
        self.stopping = False
        self.batch_sizes: list[int] = []
        self.observers: list[Any] = []  # metrics hooks: observer(batch_inputs, groups)
        self.request_log = RequestLog(store)  # every served prediction, for feedback and monitoring
        self.traffic = TrafficRing()  # this replica's recent requests per deployment (console charts)

    # --- deployments ---------------------------------------------------------------------

    def resolve(self, name: str) -> tuple[Deployment, Target]:
        """The deployment `name` and its target (blocking: call it in a worker thread)."""
        now = time.monotonic()
        key = _key(current_project(), name)
        cached = self._resolved.get(key)
        if cached is not None and now - cached.seen < self.config.refresh_s:
            return cached.row, cached.target
        row = find_deployment(self.store, name)
        if row is None:
            self.traffic.forget(key)
            gone = self._resolved.pop(key, None)
            if gone is not None:  # undeployed: free its memory unless another deployment shares it
                self._release(gone.target.slot)
            missing = NotFoundError(
                f"deployment {name!r} not found; create it with `llmos deploy MODEL --name {name}`"
            )
            missing.code = "model_not_found"
            raise missing
        if cached is not None and cached.row.id == row.id and cached.row.revision == row.revision:
            cached.seen = now
            return cached.row, cached.target
        try:
            target = resolve_target(self.store, row)
        except Exception as exc:
            raise ModelUnavailable(f"deployment {name}: {exc}") from exc
        with self._lock:
            self._resolved[key] = _Resolved(now, row, target)
        if cached is not None and cached.target.slot != target.slot:
            self._release(cached.target.slot)  # re-pointed: requests still queued reload it on demand
        return row, target

    def _release(self, ref: str) -> None:
        if not any(r.target.slot == ref for r in list(self._resolved.values())):
            self.pager.evict(ref)

    async def target(self, name: str, kind: str) -> tuple[Deployment, Target]:
        cached = self._resolved.get(_key(current_project(), name))
        if cached is not None and time.monotonic() - cached.seen < self.config.refresh_s:
            row, target = cached.row, cached.target  # fresh: no thread hop, no database read
        else:
            row, target = await asyncio.to_thread(self.resolve, name)
        if target.kind != kind:
            route = DEPLOYMENT_KINDS[target.kind].route.format(name=name)
            raise UsageError(f"deployment {name!r} serves a {target.kind} model ({target.ref}); use {route}")
        return row, target

    def check_inputs(self, texts: Sequence[Any], field: str) -> None:
        if not texts:
            raise UsageError(f"{field}: give at least one input")
        if len(texts) > self.config.max_inputs:
            raise InputTooLarge(
                f"{field}: {len(texts)} inputs, more than the limit of {self.config.max_inputs}"
            )
        for i, text in enumerate(texts):
            if isinstance(text, str) and len(text) > self.config.max_input_chars:
                limit = self.config.max_input_chars
                raise InputTooLarge(f"{field}[{i}]: {len(text)} characters, more than the limit of {limit}")

    # --- classifiers and embedders: through the batcher ----------------------------------

    async def predict(self, name: str, texts: list[Any]) -> tuple[Target, list[dict[str, Any]]]:
        """Predict and log the request: the target and one row per input, each carrying the
        request id and its index (what feedback names)."""
        _, target = await self.target(name, "classifier")
        self.check_inputs(texts, "inputs")
        rows = await self.batched(name, target, texts)
        request_id = new_request_id()
        self.request_log.add_predictions(request_id, name, target, texts, rows)
        return target, [{**row, "request_id": request_id, "index": i} for i, row in enumerate(rows)]

    def record_answer(
        self, request_id: str, name: str, target: Target, inputs: dict[str, Any], text: str, index: int = 0
    ) -> None:
        """Log a generated answer (chat and completions) under its OpenAI id (`index`: the
        choice, for n > 1 or a list of prompts)."""
        from llmos.store.feedback import RequestRecord

        record = RequestRecord(request_id, index, name, target.ref, inputs, {"answer": text})
        self.request_log.add([record])

    async def embed(self, name: str, texts: list[str]) -> tuple[Target, list[Any]]:
        _, target = await self.target(name, "embedding")
        self.check_inputs(texts, "input")
        return target, await self.batched(name, target, texts)

    async def batched(self, name: str, target: Target, inputs: list[Any]) -> list[Any]:
        """Run `inputs` through the batcher, counting the request in the traffic ring (its
        latency from queueing to answer, and the size of the batch it rode in)."""
        key = _key(current_project(), name)
        began = time.perf_counter()
        try:
            future = self.batcher.submit(target, inputs)
            rows = await self.wait(future)
        except Exception:
            self.traffic.record(key, time.perf_counter() - began, None, error=True)
            raise
        self.traffic.record(key, time.perf_counter() - began, future.batch_inputs)
        return list(rows)

    async def wait(self, future: Future[Any], request: Any = None) -> Any:
        """The future's result within the timeout. A timed-out request, or one whose client
        went away (`request`, a Starlette request, checked every quarter second), cancels
        its future, which frees its place in the batch (a generation stops at the next
        decoding step)."""
        waiting = asyncio.wrap_future(future)
        deadline = time.monotonic() + self.config.timeout_s
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RequestTimeout(
                        f"no answer within {self.config.timeout_s:g} s; retry or raise --timeout"
                    )
                done, _ = await asyncio.wait({waiting}, timeout=min(left, 0.25) if request else left)
                if done:
                    return waiting.result()
                if request is not None and await request.is_disconnected():
                    raise RequestTimeout("the client went away")
        finally:
            if not future.done():
                future.cancel()

    def _run(self, target: Target, inputs: list[Any]) -> Sequence[Any]:
        """Run one group of a batch (in the base model's worker thread)."""
        slot = self.pager.slot(target)
        if target.kind == "embedding":
            with slot.lock:  # (vector, tokens) per input, for the usage report
                embedder = self.pager.embedder(target)
                tokens = embedder.tokenizer(inputs, truncation=True, max_length=embedder.max_length)[
                    "input_ids"
                ]
                return list(zip(embedder(inputs).tolist(), (len(t) for t in tokens)))
        # a whole model may run in several batch workers at once (Predictor is thread-safe);
        # an adapter's switch and its forward pass must not interleave with another adapter's
        with slot.lock if target.adapter else nullcontext():
            return list(self.pager.predictor(target).predict(inputs))

    def _run_groups(self, groups: list[tuple[Target, list[Any]]]) -> list[Sequence[Any] | Exception]:
        """Run every group of a batch: adapters over the shared base together (the pager
        runs the LoRA ones in shared forward passes), anything else group by group."""
        results: list[Sequence[Any] | Exception | None] = [None] * len(groups)
        adapters = [i for i, (t, _) in enumerate(groups) if t.adapter and DEPLOYMENT_KINDS[t.kind].labels]
        if adapters:
            answers = self.pager.predict_adapters([groups[i] for i in adapters])
            for i, answer in zip(adapters, answers):
                results[i] = answer
        for i, (target, inputs) in enumerate(groups):
            if results[i] is None:
                try:
                    results[i] = self._run(target, inputs)
                except Exception as exc:
                    results[i] = exc
        return [r if r is not None else RuntimeError("no answer") for r in results]

    def _on_batch(self, inputs: int, groups: int) -> None:
        for observer in self.observers:
            observer(inputs, groups)

    # --- generation: through the LLM's own batching engine --------------------------------

    async def llm(self, name: str) -> tuple[Target, Any]:
        _, target = await self.target(name, "generation")
        return target, await asyncio.to_thread(self.pager.llm, target)

    def engine(self, llm: Any) -> Any:
        return llm.engine(self.config.max_batch, self.config.max_wait_ms)

    def start_generation(self) -> None:
        with self._lock:
            if self.stopping:
                raise ModelUnavailable("the server is shutting down; retry shortly")
            if self.generations >= self.config.max_generations:
                raise ServerBusy(f"{self.generations} generations in flight, the limit; retry shortly")
            self.generations += 1

    def end_generation(self) -> None:
        with self._lock:
            self.generations -= 1

    # --- state -----------------------------------------------------------------------------

    def describe(self, row: Deployment) -> dict[str, Any]:
        """A deployment with where its model is in memory (`llmos deployments show`)."""
        target = self._resolved.get(_key(row.project, row.name))
        memory = self.pager.resident(target.target.slot) if target else None
        return {"memory": memory, "server": self.stats()}

    def engines(self) -> list[Any]:
        """The generation engines started so far."""
        found = []
        for slot in list(self.pager.slots.values()):
            for model in list(slot.whole.values()):
                engine = getattr(model, "_engine", None)
                if engine is not None:
                    found.append(engine)
        return found

    def problems(self) -> list[str]:
        """What keeps this server from serving (healthz answers 503 while there is any)."""
        found = [
            f"generation engine died: {e.failure or 'thread ended'}" for e in self.engines() if not e.alive
        ]
        if self.stopping:
            found.append("shutting down")
        return found

    def begin_shutdown(self, graceful_s: float) -> None:
        """The server was told to stop: take no new generations, and end those in flight
        that are still running a little before the graceful period is over, so their
        answers (an error naming the shutdown) still reach their clients."""
        self.stopping = True
        for engine in self.engines():
            engine.stop(max(0.0, graceful_s * 0.8 - 1.0))

    def recent_traffic(self, row: Deployment, seconds: int) -> tuple[float, list[dict[str, Any]]]:
        """This replica's per-bucket traffic of a deployment over the last `seconds`."""
        return self.traffic.read(_key(row.project, row.name), seconds)

    def resident(self, row: Deployment) -> dict[str, Any] | None:
        """Where a deployment's model is in this replica's memory (None: not loaded)."""
        target = self._resolved.get(_key(row.project, row.name))
        return self.pager.resident(target.target.slot) if target else None

    def stats(self) -> dict[str, Any]:
        return {**self.pager.stats(), "queue_depth": self.batcher.depth(), "generations": self.generations}

    def close(self) -> None:
        """Finish queued requests, then stop the workers and the generation engines."""
        self.stopping = True
        self.batcher.close()
        self.request_log.close()
        for engine in self.engines():
            engine.close()
