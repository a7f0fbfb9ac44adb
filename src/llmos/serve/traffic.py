"""Recent traffic per deployment, for the console's charts (`GET /v1/deployments/{name}/traffic`).

A small in-memory ring of fixed buckets (10 s each, the last 15 minutes) per deployment:
requests, errors, latency samples and the size of the batch each request rode in. Like
`/metrics` it is per replica: each server counts what it answered, nothing is stored, and
a restart starts from nothing. Classifier and embedding requests (the batched routes) are
counted; chat and completions are not (they batch inside the LLM's own engine).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BUCKET_S = 10
KEEP_S = 900
SAMPLES = 512  # latency samples kept per bucket (a uniform reservoir beyond that)


@dataclass
class _Bucket:
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    batch_sum: int = 0
    batch_count: int = 0
    batch_max: int = 0


def _quantile(ordered: list[float], q: float) -> float:
    """The nearest-rank quantile of sorted samples."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class TrafficRing:
    def __init__(
        self, bucket_s: int = BUCKET_S, keep_s: int = KEEP_S, clock: Callable[[], float] = time.time
    ) -> None:
        self.bucket_s = bucket_s
        self.keep_s = keep_s
        self.clock = clock
        self._rings: dict[str, dict[int, _Bucket]] = {}
        self._lock = threading.Lock()
        self._random = random.Random(0)

    def record(
        self, key: str, latency_s: float, batch_inputs: int | None = None, error: bool = False
    ) -> None:
        """One answered (or failed) request of deployment `key`."""
        slot = int(self.clock() // self.bucket_s)
        with self._lock:
            ring = self._rings.setdefault(key, {})
            bucket = ring.get(slot)
            if bucket is None:
                bucket = ring[slot] = _Bucket()
                oldest = slot - self.keep_s // self.bucket_s
                for old in [s for s in ring if s <= oldest]:
                    del ring[old]
            bucket.requests += 1
            bucket.errors += error
            if len(bucket.latencies) < SAMPLES:
                bucket.latencies.append(latency_s)
            else:
                at = self._random.randrange(bucket.requests)
                if at < SAMPLES:
                    bucket.latencies[at] = latency_s
            if batch_inputs:
                bucket.batch_sum += batch_inputs
                bucket.batch_count += 1
                bucket.batch_max = max(bucket.batch_max, batch_inputs)

    def forget(self, key: str) -> None:
        with self._lock:
            self._rings.pop(key, None)

    def read(self, key: str, seconds: int) -> tuple[float, list[dict[str, Any]]]:
        """(now, one row per bucket of the last `seconds`, oldest first, empty ones included)."""
        now = self.clock()
        last = int(now // self.bucket_s)
        first = last - max(1, math.ceil(seconds / self.bucket_s)) + 1
        with self._lock:
            ring = dict(self._rings.get(key, {}))
            copies = {s: (b.requests, b.errors, sorted(b.latencies), b.batch_sum, b.batch_count, b.batch_max)
                      for s, b in ring.items() if s >= first}  # fmt: skip
        rows = []
        for slot in range(first, last + 1):
            requests, errors, lat, batch_sum, batch_count, batch_max = copies.get(slot, (0, 0, [], 0, 0, 0))
            start = slot * self.bucket_s
            rows.append(
                {
                    "start": float(start),
                    "offset_s": round(start - now),  # whole seconds: what a chart's axis shows
                    "requests": requests,
                    "errors": errors,
                    "rate_per_s": round(requests / self.bucket_s, 4),
                    "p50_ms": round(_quantile(lat, 0.5) * 1000, 3) if lat else None,
                    "p95_ms": round(_quantile(lat, 0.95) * 1000, 3) if lat else None,
                    "p99_ms": round(_quantile(lat, 0.99) * 1000, 3) if lat else None,
                    "mean_batch": round(batch_sum / batch_count, 3) if batch_count else None,
                    "max_batch": batch_max if batch_count else None,
                }
            )
        return now, rows
