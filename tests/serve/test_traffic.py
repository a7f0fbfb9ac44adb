"""`GET /v1/deployments/{name}/traffic`: the server's recent requests per deployment, in
10-second buckets (what the console's Deployments page draws), and its bad input."""

from __future__ import annotations

import httpx
import pytest

from llmos import Client
from llmos.api.server import ServerThread
from llmos.core.errors import UsageError
from llmos.security.policy import open_policy
from llmos.serve.runtime import ServeConfig
from llmos.serve.traffic import TrafficRing

TEXTS = ["my card has not arrived", "send money to my account", "refund please"]


def test_traffic_counts_every_request_with_its_latency_and_batch(lora_ws):
    ws = lora_ws
    ws.deploy("lora0@1", "desk")
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1), policy=open_policy()) as url:
        client = Client(url)
        for i in range(7):
            client.predict("desk", TEXTS[: 1 + i % 3])
        seen = client.traffic("desk", seconds=60)
        assert seen.deployment == "desk" and seen.bucket_s == 10 and len(seen.buckets) == 6
        busy = [b for b in seen.buckets if b.requests]
        assert sum(b.requests for b in seen.buckets) == 7 and sum(b.errors for b in busy) == 0
        assert all(b.p50_ms and 0 < b.p50_ms <= b.p99_ms for b in busy)
        # each request rode in a batch of at least its own inputs (1 to 3), one at a time here
        assert all(1 <= b.mean_batch <= 3 for b in busy), busy
        assert all(b.rate_per_s == b.requests / 10 for b in seen.buckets)
        assert [b.start for b in seen.buckets] == sorted(b.start for b in seen.buckets)
        assert seen.memory is not None and seen.memory["as"] == "adapter"

        bad = httpx.get(f"{url}/v1/deployments/desk/traffic", params={"seconds": 5000})
        assert bad.status_code == 422
        assert (
            bad.json()["error"]["message"] == "seconds: 5000 is outside 10..900 (a server keeps 15 minutes)"
        )
        missing = httpx.get(f"{url}/v1/deployments/nobody/traffic")
        assert missing.status_code == 404 and "'nobody'" in missing.json()["error"]["message"]
    # no server, no traffic: the workspace says where to ask
    with pytest.raises(UsageError, match="counted by a running server"):
        ws.traffic("desk")


def test_the_ring_buckets_by_time_and_forgets_after_15_minutes():
    now = [1000.0]
    ring = TrafficRing(clock=lambda: now[0])
    for latency in (0.010, 0.020, 0.030, 0.040):
        ring.record("p/d", latency, batch_inputs=4)
    ring.record("p/d", 0.5, error=True)
    now[0] = 1012.0
    ring.record("p/d", 0.001, batch_inputs=1)
    _, rows = ring.read("p/d", 20)
    assert [(r["start"], r["requests"], r["errors"]) for r in rows] == [(1000.0, 5, 1), (1010.0, 1, 0)]
    assert rows[0]["p50_ms"] == 30.0 and rows[0]["p99_ms"] == 500.0
    assert rows[0]["mean_batch"] == 4.0 and rows[1]["max_batch"] == 1
    assert rows[1]["offset_s"] == -2.0
    now[0] = 1000.0 + 900 + 5
    ring.record("p/d", 0.001)
    _, rows = ring.read("p/d", 900)
    assert sum(r["requests"] for r in rows) == 2  # the first bucket is gone
