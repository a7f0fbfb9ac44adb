"""A flood of wrong tokens against a real `llmos serve` (F17 self-defence, measured).

One `llmos serve` process (uvicorn, its default settings, the token policy); a flood
process sends `--flood` requests (10,000 by default) with a different wrong token each
from one source address (127.0.0.1), each also carrying a forged `X-Forwarded-For` (the
server must judge the connection's address, not the header), over `--connections`
keep-alive connections (200), each as fast as the server answers it. Meanwhile two valid clients
bind other loopback source addresses (127.0.0.2 and 127.0.0.3) and call
`GET /v1/deployments` at a steady pace with their own admin token. The same two clients'
requests outside the floods are the baseline.

Reported: how many of the flood's requests reached the token check (401 answers: the
token was looked up; 429 answers were refused before), the audit events the flood added
(by action: one `auth.flood` per burst), and the valid clients' p50/p99 latency with the
flood against without (ratio); all of it for a server with the default
`--refusal-delay 1` (a client that keeps knocking gets each 429 a second later) and
one with `--refusal-delay 0` (every 429 at once), in the same run. A second flood
spreads its 10,000 requests over a minute (the issue's "10,000 in a minute"), from
another address. Prints a table and writes
`benchmarks/results/bench_flood.json`.

    python benchmarks/bench_flood.py                 # 10,000 wrong tokens
    python benchmarks/bench_flood.py --flood 2000    # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, write_result

VALID_ADDRESSES = ("127.0.0.2", "127.0.0.3")
FLOOD_ADDRESS = "127.0.0.1"


# --- the flood (its own process, raw sockets: the cheapest client, so the measurement is
# of the server, not of an HTTP library's overhead on the same two cores) -----------------


async def _flood_connection(
    port: int, address: str, count: int, every_s: float, statuses: dict[int, int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
    next_at = time.perf_counter()
    for _ in range(count):
        if every_s:
            next_at += every_s
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        wrong = "llmos_" + "".join(random.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=32))
        forged = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
        writer.write(
            (
                f"GET /v1/deployments HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {wrong}\r\nX-Forwarded-For: {forged}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        statuses[status] = statuses.get(status, 0) + 1
    writer.close()


async def _flood(port: int, address: str, total: int, connections: int, seconds: float) -> dict[str, Any]:
    statuses: dict[int, int] = {}
    share = [total // connections + (1 if i < total % connections else 0) for i in range(connections)]
    every_s = seconds * connections / total if seconds else 0.0
    start, wall = time.perf_counter(), time.time()
    await asyncio.gather(*(_flood_connection(port, address, n, every_s, statuses) for n in share))
    return {"seconds": time.perf_counter() - start, "start": wall, "end": time.time(), "statuses": statuses}


def flood_worker(port: int, address: str, total: int, connections: int, seconds: float) -> None:
    print(json.dumps(asyncio.run(_flood(port, address, total, connections, seconds))))


# --- the valid clients ------------------------------------------------------------------


def _valid_client(
    url: str,
    token: str,
    address: str,
    stop: threading.Event,
    every_s: float,
    latencies: list[tuple[float, float]],
    failures: list[int],
) -> None:
    import httpx

    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=url, transport=transport, timeout=30) as client:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(5):  # warm the connection and the server's paths
            client.get("/v1/deployments", headers=headers)
        next_at = time.perf_counter()
        while not stop.is_set():
            at, start = time.time(), time.perf_counter()
            r = client.get("/v1/deployments", headers=headers)
            latencies.append((at, time.perf_counter() - start))
            if r.status_code != 200:
                failures.append(r.status_code)
            next_at += every_s
            time.sleep(max(0.0, next_at - time.perf_counter()))


def _clients(
    url: str, token: str, every_s: float
) -> tuple[threading.Event, list[threading.Thread], list[tuple[float, float]], list[int]]:
    stop, latencies, failures = threading.Event(), [], []  # type: ignore[var-annotated]
    threads = [
        threading.Thread(target=_valid_client, args=(url, token, a, stop, every_s, latencies, failures))
        for a in VALID_ADDRESSES
    ]
    for t in threads:
        t.start()
    return stop, threads, latencies, failures


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


# --- the server -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(home: Path, port: int, delay: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "LLMOS_HOME": str(home)}
    code = "import sys; from llmos.cli.main import main; sys.argv[0] = 'llmos'; main()"
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--refusal-delay",
            str(delay),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"llmos serve exited: {server.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.kill()
    raise SystemExit("llmos serve did not start within 120 s")


def _audit_actions(home: Path) -> dict[str, int]:
    with sqlite3.connect(home / "llmos.db") as conn:
        return dict(conn.execute("SELECT action, count(*) FROM audit_events GROUP BY action").fetchall())


def _flood_phase(
    port: int, home: Path, address: str, total: int, connections: int, seconds: float
) -> dict[str, Any]:
    before = _audit_actions(home)
    command = [
        sys.executable,
        __file__,
        "--flood-worker",
        str(port),
        address,
        str(total),
        str(connections),
        str(seconds),
    ]
    flood = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    time.sleep(0.5)  # the audit writes of the last answers
    after = _audit_actions(home)
    flood["statuses"] = {int(k): v for k, v in flood["statuses"].items()}
    flood["audit_added"] = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    flood["address"] = address
    return flood


def _latency(samples: list[tuple[float, float]]) -> dict[str, float]:
    values = [s[1] for s in samples]
    return {
        "n": len(values),
        "p50_ms": round(_percentile(values, 0.5), 2),
        "p99_ms": round(_percentile(values, 0.99), 2),
    }


def _run(
    args: argparse.Namespace, delay: float
) -> tuple[list[tuple[float, float]], list[int], list[dict[str, Any]]]:
    """One fresh workspace and `llmos serve --refusal-delay DELAY`: quiet, then each flood."""
    from llmos import Workspace
    from llmos.security.identities import add_user, create_token

    phases = [("as fast as served", "127.0.0.1", 0.0)]
    if args.paced_s:
        phases.append((f"spread over {args.paced_s:g} s", "127.0.0.4", args.paced_s))
    floods = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "ws"
        ws = Workspace(home)
        ws.init()
        add_user(ws.store, "root", "admin")
        token = create_token(ws.store, "root")[0]
        if not (home / "llmos.db").exists():
            raise SystemExit(f"expected the workspace's SQLite database at {home / 'llmos.db'}")
        port = _free_port()
        server = _start_server(home, port, delay)
        try:
            stop, threads, samples, failures = _clients(
                f"http://127.0.0.1:{port}", token, args.every_ms / 1000
            )
            time.sleep(args.quiet_s)
            for label, address, seconds in phases:
                flood = _flood_phase(port, home, address, args.flood, args.connections, seconds)
                floods.append({"phase": label, **flood})
                time.sleep(args.quiet_s)
            stop.set()
            for t in threads:
                t.join()
        finally:
            server.terminate()
            server.wait(60)
    return samples, failures, floods


def _report(args: argparse.Namespace, delay: float, samples: list[tuple[float, float]], failures: list[int],
            floods: list[dict[str, Any]]) -> tuple[dict[str, Any], list[tuple[str, str]]]:  # fmt: skip
    quiet = [s for s in samples if not any(f["start"] - 0.5 <= s[0] <= f["end"] + 0.5 for f in floods)]
    result: dict[str, Any] = {
        "refusal_delay_s": delay,
        "valid_failures": len(failures),
        "quiet": _latency(quiet),
        "floods": [],
    }
    rows = [
        (f"--refusal-delay {delay:g}: valid clients, no flood",
         f"p50 {result['quiet']['p50_ms']} ms, p99 {result['quiet']['p99_ms']} ms ({len(quiet)} requests)"),
    ]  # fmt: skip
    for f in floods:
        loud = _latency([s for s in samples if f["start"] <= s[0] <= f["end"]])
        entry = {
            "phase": f["phase"],
            "address": f["address"],
            "requests": args.flood,
            "seconds": round(f["seconds"], 2),
            "per_s": round(args.flood / f["seconds"]),
            "statuses": f["statuses"],
            "reached_token_check": f["statuses"].get(401, 0),
            "refused_before_check": f["statuses"].get(429, 0),
            "audit_events_added": f["audit_added"],
            "valid": loud,
            "p50_ratio": round(loud["p50_ms"] / result["quiet"]["p50_ms"], 2),
            "p99_ratio": round(loud["p99_ms"] / result["quiet"]["p99_ms"], 2),
        }
        result["floods"].append(entry)
        added = ", ".join(f"{k} {v}" for k, v in sorted(f["audit_added"].items())) or "none"
        rows += [
            (f"  flood {f['phase']} from {f['address']}",
             f"{args.flood} wrong tokens in {f['seconds']:.1f} s ({entry['per_s']}/s)"),
            ("    reached the token check (401)", str(entry["reached_token_check"])),
            ("    refused before it (429)", str(entry["refused_before_check"])),
            ("    audit events added", added),
            ("    valid clients during it",
             f"p50 {loud['p50_ms']} ms (x{entry['p50_ratio']}), "
             f"p99 {loud['p99_ms']} ms (x{entry['p99_ratio']}), {loud['n']} requests"),
        ]  # fmt: skip
    rows.append(("  valid clients' failed requests", str(len(failures))))
    return result, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flood", type=int, default=10_000, help="wrong-token requests per flood")
    parser.add_argument("--connections", type=int, default=200, help="the flood's connections")
    parser.add_argument(
        "--quiet-s", type=float, default=15.0, help="seconds without flood, before and after each"
    )
    parser.add_argument(
        "--paced-s", type=float, default=60.0, help="the second flood spread over this many seconds (0: none)"
    )
    parser.add_argument("--every-ms", type=float, default=20.0, help="each valid client's pace")
    parser.add_argument(
        "--refusal-delays", default="1,0", help="a server with each `--refusal-delay` (comma-separated)"
    )
    parser.add_argument("--flood-worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood_worker:
        port, address, total, connections, seconds = args.flood_worker
        flood_worker(int(port), address, int(total), int(connections), float(seconds))
        return

    load = os.getloadavg()[0]
    result: dict[str, Any] = {
        "note": f"{os.cpu_count()} cores, load average {load:.2f} at the start; "
        "server, flood and clients share them",
        "server": "llmos serve (uvicorn, default options: no proxy trusted), one process",
        "valid_clients": list(VALID_ADDRESSES),
        "valid_every_ms": args.every_ms,
        "flood_connections": args.connections,
        "servers": [],
    }
    rows: list[tuple[str, str]] = []
    for delay in (float(d) for d in args.refusal_delays.split(",")):
        entry, more = _report(args, delay, *_run(args, delay))
        result["servers"].append(entry)
        rows += more
    width = max(len(r[0]) for r in rows)
    print(f"\nwrong-token floods against llmos serve ({result['note']})\n{'-' * (width + 60)}")
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print(f"-> {write_result('bench_flood', result)}")


if __name__ == "__main__":
    main()
