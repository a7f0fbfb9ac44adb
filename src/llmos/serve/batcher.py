"""Request batching per base model: coalesce, group per deployment, bound the queue.

A classifier or embedder costs about the same for one text as for a dozen on a CPU
(the weights are read once per forward pass), so serving one request at a time wastes
most of the machine. Each base model gets a queue and one worker thread: the worker
takes the first request, waits up to `max_wait_ms` for more until `max_batch` inputs,
then runs the batch grouped by deployment. When a batch holds several deployments and
a `run_groups` is given, all of its groups go to it at once: the server runs the LoRA
adapters of one base in shared forward passes there (`serve/mixed.py`); otherwise each
group runs on its own. With `workers` > 1, that many threads take batches from the
queue, so whole models run several batches at once on a multi-core CPU (the forward
pass releases the GIL; batches over one shared base take turns, under the base's
lock). The queue
is bounded: when it is full, `submit` raises `ServerBusy` (HTTP 429) instead of letting
latency grow without limit. A request whose caller gave up (timeout) is skipped.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from llmos.serve.errors import ServerBusy
from llmos.serve.targets import Target

Runner = Callable[[Target, list[Any]], Sequence[Any]]
# all groups of a batch at once: one result (or the exception that failed it) per group
GroupsRunner = Callable[[list[tuple[Target, list[Any]]]], Sequence[Sequence[Any] | Exception]]


class BatchFuture(Future[list[Any]]):
    """The outputs of one request, and how many inputs the batch it ran in held."""

    batch_inputs: int = 0


@dataclass
class _Job:
    target: Target
    inputs: list[Any]
    future: BatchFuture


class _Lane:
    """The queue and worker of one base model."""

    def __init__(self, key: str, batcher: Batcher) -> None:
        self.key = key
        self.batcher = batcher
        self.jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=batcher.max_queue)
        self.threads = [
            threading.Thread(target=self._run, name=f"llmos-batch{i}-{key[-24:]}", daemon=True)
            for i in range(batcher.workers)
        ]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        b = self.batcher
        while True:
            first = self.jobs.get()
            if first is None:
                return
            batch, size = [first], len(first.inputs)
            deadline = time.monotonic() + b.max_wait
            stop = False
            while size < b.max_batch:
                try:
                    nxt = self.jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
                size += len(nxt.inputs)
            self._run_batch(batch)
            if stop:
                return

    def _run_batch(self, batch: list[_Job]) -> None:
        live = [job for job in batch if job.future.set_running_or_notify_cancel()]
        groups: dict[str, list[_Job]] = {}
        for job in live:
            groups.setdefault(job.target.ref, []).append(job)
        if live:
            total = sum(len(j.inputs) for j in live)
            for job in live:
                job.future.batch_inputs = total
            self.batcher.on_batch(total, len(groups))
        work = [(jobs[0].target, [x for job in jobs for x in job.inputs]) for jobs in groups.values()]
        run_groups = self.batcher.run_groups
        if run_groups is not None and len(work) > 1:
            try:
                results = list(run_groups(work))
            except Exception as exc:  # every request of the batch fails; the lane keeps serving
                results = [exc] * len(work)
        else:
            results = [self._run_group(target, inputs) for target, inputs in work]
        for jobs, outputs in zip(groups.values(), results):
            if isinstance(outputs, Exception):  # the group's requests fail; the lane keeps serving
                for job in jobs:
                    job.future.set_exception(outputs)
                continue
            start = 0
            for job in jobs:
                job.future.set_result(list(outputs[start : start + len(job.inputs)]))
                start += len(job.inputs)

    def _run_group(self, target: Target, inputs: list[Any]) -> Sequence[Any] | Exception:
        try:
            return list(self.batcher.run(target, inputs))
        except Exception as exc:
            return exc


class Batcher:
    def __init__(
        self,
        run: Runner,
        max_batch: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 256,
        on_batch: Callable[[int, int], None] | None = None,
        workers: int = 1,
        run_groups: GroupsRunner | None = None,
    ) -> None:
        self.run = run
        self.run_groups = run_groups
        self.workers = max(1, workers)
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.on_batch = on_batch or (lambda _inputs, _groups: None)
        self._lanes: dict[str, _Lane] = {}
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, target: Target, inputs: list[Any]) -> BatchFuture:
        """Queue `inputs` for `target`; the future holds one output per input."""
        with self._lock:
            if self._closed:
                raise ServerBusy("the server is shutting down")
            lane = self._lanes.get(target.base_key)
            if lane is None:
                lane = self._lanes[target.base_key] = _Lane(target.base_key, self)
        job = _Job(target, inputs, BatchFuture())
        try:
            lane.jobs.put_nowait(job)
        except queue.Full:
            raise ServerBusy(
                f"the queue for {target.ref} is full ({self.max_queue} requests); retry shortly"
            ) from None
        return job.future

    def depth(self) -> int:
        return sum(lane.jobs.qsize() for lane in list(self._lanes.values()))

    def close(self) -> None:
        """Stop taking requests; finish every queued one; stop the workers."""
        with self._lock:
            self._closed = True
            lanes = list(self._lanes.values())
        for lane in lanes:
            for _ in lane.threads:  # one stop mark per worker; each worker takes one and ends
                lane.jobs.put(None)  # blocks while the queue is full: queued requests go first
        for lane in lanes:
            for thread in lane.threads:
                thread.join()
