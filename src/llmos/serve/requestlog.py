"""`RequestLog`: every served prediction is written to the store, off the request path.

A request only puts its records on a queue; one writer thread drains whatever has
queued up and writes it in one transaction, so under load one commit carries many
requests and the routes never wait for the disk. Feedback may name a request whose
record is still queued: `flush()` waits until everything queued so far is written.
A failed write is logged and dropped (serving goes on); a full queue drops records
with a warning rather than slowing the API down.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from typing import Any

from llmos.serve.targets import Target
from llmos.store.db import Store
from llmos.store.feedback import RequestRecord, record_requests

log = logging.getLogger("llmos.serve")


def new_request_id(prefix: str = "req") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def input_column(target: Target) -> str:
    """The column a single-input model reads (the key a plain text is logged under)."""
    spec = (target.config or {}).get("input") or {}
    return str(spec.get("column") or "text")


def prediction_label(row: dict[str, Any]) -> tuple[str | None, float | None]:
    """The predicted label and its confidence, for any classifier output."""
    if "label" in row:
        return str(row["label"]), float(row["score"]) if row.get("score") is not None else None
    if "labels" in row:
        return "|".join(row["labels"]), None
    if "value" in row:
        return str(row["value"]), None
    return None, None


class RequestLog:
    def __init__(self, store: Store, max_batch: int = 1024, max_queue: int = 100_000) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.Queue[RequestRecord | threading.Event | None] = queue.Queue(max_queue)
        self.written = 0
        self.dropped = 0
        self.commits = 0
        self._thread = threading.Thread(target=self._run, name="llmos-request-log", daemon=True)
        self._thread.start()

    def add(self, records: list[RequestRecord]) -> None:
        for record in records:
            try:
                self._queue.put_nowait(record)
            except queue.Full:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning("request log queue full: %d served requests not recorded", self.dropped)

    def add_predictions(
        self, request_id: str, deployment: str, target: Target, inputs: list[Any], rows: list[dict[str, Any]]
    ) -> None:
        column = input_column(target)
        records = []
        for i, (value, row) in enumerate(zip(inputs, rows)):
            label, confidence = prediction_label(row)
            output = {k: v for k, v in row.items() if k != "probabilities"}
            values = value if isinstance(value, dict) else {column: value}
            records.append(
                RequestRecord(request_id, i, deployment, target.ref, values, output, label, confidence)
            )
        self.add(records)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every record queued before this call is written."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(60)

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            batch: list[RequestRecord] = []
            events: list[threading.Event] = []
            while True:
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    events.append(item)
                else:
                    batch.append(item)
                if stop or len(batch) >= self.max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    record_requests(self.store, batch)
                    self.written += len(batch)
                    self.commits += 1
                except Exception:  # serving must go on; the records are lost, and said so
                    log.exception("could not record %d served requests", len(batch))
            for event in events:
                event.set()
