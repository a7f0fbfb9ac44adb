"""The `probe` job kind: waits a given time while reporting progress, and returns
when and where it ran. It measures the kernel itself (submit-to-start latency in
`benchmarks/bench_scaling.py`, admission order in the tests) without the cost of
loading a model, so what is timed is the scheduler and not the work.
"""

from __future__ import annotations

import os
import time
from typing import Any

from llmos.kernel.context import JobContext

PROBE_HANDLER = "llmos.kernel.probe:probe_job"


def probe_job(ctx: JobContext) -> dict[str, Any]:
    started = time.time()
    seconds = float(ctx.payload.get("seconds", 0.0))
    steps = max(1, int(seconds / 0.1))
    ctx.progress.start("probe", steps)
    for _ in range(steps):
        time.sleep(seconds / steps)
        ctx.progress.advance(1)
    return {
        "started": started,
        "ended": time.time(),
        "pid": os.getpid(),
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0")),
        "attempt": ctx.attempt,
    }
