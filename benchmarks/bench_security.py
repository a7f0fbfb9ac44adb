"""What security costs: the audit log, the per-request token check, injection screening.

- audit: appends per second one at a time (each its own `BEGIN IMMEDIATE` transaction),
  and `verify` time at 10,000 and 100,000 events;
- policy: mean latency of `GET /v1/deployments` in-process (ASGI, no network) with no
  authentication (`--insecure-no-auth`), with bearer tokens, and with tokens plus the
  request guard (rate limit and quota counters);
- injection heuristics: detection and false alarms on the labelled prompts of the tests,
  false alarms on Banking77's real customer queries (when present).
Prints a table and writes `benchmarks/results/bench_security.json`.

    python benchmarks/bench_security.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, SHARED_DATA, machine, write_result


def audit_figures(home: Path) -> dict[str, Any]:
    from llmos.core.settings import Settings
    from llmos.store.audit import append_event, append_many, verify
    from llmos.store.db import Store

    store = Store(Settings.resolve(home / "audit"))
    n = 300
    start = time.perf_counter()
    for i in range(n):
        append_event(store, "bench.append", f"t{i}")
    per_s = n / (time.perf_counter() - start)
    result: dict[str, Any] = {"appends_per_s": round(per_s)}
    for size in (10_000, 100_000):
        append_many(store, [{"action": "bench", "target": str(i), "outcome": "ok"} for i in range(size - n)])
        n = size
        start = time.perf_counter()
        verdict = verify(store)
        assert verdict.ok and verdict.count == size
        result[f"verify_{size}_s"] = round(time.perf_counter() - start, 3)
    return result


async def _latency(app: Any, headers: dict[str, str], n: int) -> float:
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://llmos") as client:
        for _ in range(20):  # warm-up
            await client.get("/v1/deployments", headers=headers)
        start = time.perf_counter()
        for _ in range(n):
            r = await client.get("/v1/deployments", headers=headers)
            assert r.status_code == 200, r.text
        return (time.perf_counter() - start) / n * 1000


def policy_figures(home: Path, n: int = 500) -> dict[str, Any]:
    from llmos import Workspace
    from llmos.api.access import Policy
    from llmos.api.app import create_app
    from llmos.security.guard import Guard, GuardConfig
    from llmos.security.identities import init_admin
    from llmos.security.policy import TokenPolicy
    from llmos.serve.runtime import ServeRuntime

    ws = Workspace(home / "policy")
    ws.init()
    token, _ = init_admin(ws.store)
    auth = {"Authorization": f"Bearer {token}"}
    guard = Guard(GuardConfig(rate_per_s=1e6, daily_requests=10**9), ws.store)
    setups = {
        "open (--insecure-no-auth)": (Policy(), {}),
        "bearer token": (TokenPolicy(ws.store), auth),
        "bearer token + guard": (TokenPolicy(ws.store, guard), auth),
    }
    apps = {
        name: (create_app(ServeRuntime(ws.store), policy), headers)
        for name, (policy, headers) in setups.items()
    }
    best: dict[str, float] = {}
    for _ in range(3):  # interleaved rounds, best of three: the machine is shared
        for name, (app, headers) in apps.items():
            best[name] = min(best.get(name, float("inf")), asyncio.run(_latency(app, headers, n)))
    return {"requests": n, "rounds": 3, "mean_ms": {k: round(v, 3) for k, v in best.items()}}


def injection_figures() -> dict[str, Any]:
    import pandas as pd

    from llmos.security.injection import screen

    rows = [
        json.loads(x) for x in (ROOT / "tests/security/data/injection_prompts.jsonl").read_text().splitlines()
    ]
    attacks = [r["text"] for r in rows if r["label"]]
    benign = [r["text"] for r in rows if not r["label"]]
    result: dict[str, Any] = {
        "attacks": len(attacks),
        "detected": sum(screen(t).flagged for t in attacks),
        "benign_lookalikes": len(benign),
        "false_alarms": sum(screen(t).flagged for t in benign),
    }
    folder = SHARED_DATA / "banking77"
    if folder.exists():
        texts = pd.concat([pd.read_csv(f) for f in sorted(folder.glob("*.csv"))])["text"].astype(str)
        start = time.perf_counter()
        alarms = sum(screen(t).flagged for t in texts)
        result["banking77_queries"] = len(texts)
        result["banking77_false_alarms"] = int(alarms)
        result["screen_us_per_query"] = round((time.perf_counter() - start) / len(texts) * 1e6, 1)
    return result


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        audit = audit_figures(home)
        policy = policy_figures(home)
    injection = injection_figures()
    print(f"audit: {audit['appends_per_s']} appends/s one by one; verify 10,000 in "
          f"{audit['verify_10000_s']} s, 100,000 in {audit['verify_100000_s']} s")  # fmt: skip
    print(f"{'GET /v1/deployments (in-process)':<36} mean ms")
    for name, ms in policy["mean_ms"].items():
        print(f"  {name:<34} {ms:.3f}")
    print(f"injection heuristics: {injection['detected']}/{injection['attacks']} attacks detected, "
          f"{injection['false_alarms']}/{injection['benign_lookalikes']} false alarms on look-alikes, "
          f"{injection.get('banking77_false_alarms', '-')}/{injection.get('banking77_queries', '-')} "
          f"on Banking77 queries ({injection.get('screen_us_per_query', '-')} µs each)")  # fmt: skip
    path = write_result(
        "bench_security", {"machine": machine(), "audit": audit, "policy": policy, "injection": injection}
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
