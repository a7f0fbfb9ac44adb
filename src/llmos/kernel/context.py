"""What a job handler is given: the job, its folder, a progress writer, and `finalize`.

A handler is a plain function `handler(ctx: JobContext) -> dict` found by its dotted
path. It reports progress through `ctx.progress` (the same `Progress` protocol the CLI's
progress bar implements), keeps whatever must survive a crash in `ctx.work_dir`, and
registers what it made inside a store transaction that also calls `ctx.finalize`, so
"model registered" and "job succeeded" commit together or not at all.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from llmos.kernel import jobs
from llmos.store.db import Store


class Cancelled(BaseException):
    """Raised in a worker's main thread when its job is cancelled. A BaseException, like
    KeyboardInterrupt, so that `except Exception` blocks in libraries do not swallow it
    and cleanup code (`finally`, `except BaseException`) runs."""


class JobProgress:
    """A `Progress` that writes log lines to the job's log (the worker's stdout) and keeps
    a snapshot that the heartbeat stores in the job row for followers to read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {}
        self._last_log = ""

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._state)

    def update(self, **fields: Any) -> None:
        with self._lock:
            self._state.update(fields)

    def start(self, task: str, total: int | None) -> None:
        self.update(task=task, total=total, done=0)

    def advance(self, n: int = 1, **fields: Any) -> None:
        with self._lock:
            self._state["done"] = self._state.get("done", 0) + n
            for key in ("loss", "samples_per_s"):
                if key in fields:
                    self._state[key] = round(float(fields[key]), 5)

    def log(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {message}"
        print(line, flush=True)
        self.update(message=message)

    def finish(self) -> None:
        pass


@dataclass
class JobContext:
    store: Store
    job_id: int
    kind: str
    name: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    threads: int
    work_dir: Path
    progress: JobProgress = field(default_factory=JobProgress)
    finished: bool = False

    def finalize(self, session: Session, result: dict[str, Any]) -> None:
        """Mark the job succeeded inside the caller's registering transaction."""
        jobs.finish_in(session, self.job_id, result, self.progress.snapshot())
        self.finished = True
