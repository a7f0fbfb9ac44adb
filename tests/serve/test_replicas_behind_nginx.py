"""Three `llmos serve` replicas over one PostgreSQL + S3 workspace behind Debian's nginx
(the scale pass only: `--backend scale`). Eight clients post 1,000 feedback events
through the balancer while one replica is SIGKILLed halfway: every acknowledged event is
stored exactly once, the balancer fails over so that only the requests in flight on the
killed replica are lost, and a daily quota of 100 requests per token, counted in the
database, is never exceeded across the replicas.

The single-server crash test (`test_feedback_sigkill.py`) restarts one server over the
same workspace; this one keeps serving through the crash with the replicas that remain.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from llmos.api.server import free_port
from llmos.core.settings import STORE_FILE
from llmos.store.schema import Feedback, ServedRequest
from tests import servers
from tests.servers import llmos_serve, wait_healthy

EVENTS = 1000
CLIENTS = 8
REPLICAS = 3
QUOTA = 100  # requests per token per UTC day, on every replica
PER_TOKEN = 50  # feedback events per app token: 1 prediction + 50 feedbacks stay under the quota
CAPPED = 240  # requests of the one token that runs into the quota
LABELS = ["card", "refund", "transfer"]


def _start_replica(home: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    return llmos_serve(home, port, log, "--daily-quota", str(QUOTA))


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 240) -> None:
    wait_healthy(proc, port, log, timeout, what="a replica")


@pytest.fixture
def scale_only(scale_servers):
    """Skip before the workspace's model is trained, not after."""
    if scale_servers is None:
        pytest.skip("needs --backend scale: replicas share a PostgreSQL + S3 workspace")


def test_replicas_behind_nginx_keep_feedback_once_and_the_daily_quota(scale_only, lora_ws, tmp_path):
    from llmos.security.identities import add_user, create_token
    from llmos.store.projects import day_window, usage_of

    ws = lora_ws
    ws.deploy("lora0@1", "bank")
    add_user(ws.store, "shop", "app")
    made = [create_token(ws.store, "shop", deployments=["bank"]) for _ in range(EVENTS // PER_TOKEN + 1)]
    tokens = [secret for secret, _ in made[:-1]]
    capped_secret, capped_info = made[-1]

    # each replica is a host of its own: its own LLMOS_HOME naming the same database and bucket
    procs, ports = [], []
    for i in range(REPLICAS):
        home = tmp_path / f"replica{i}"
        home.mkdir()
        shutil.copy(ws.home / STORE_FILE, home / STORE_FILE)
        ports.append(free_port())
        procs.append(_start_replica(home, ports[-1], tmp_path / f"replica{i}.log"))
    lb_root = tmp_path / "nginx"
    started = time.monotonic()
    try:
        for i, (proc, port) in enumerate(zip(procs, ports)):
            _wait_healthy(proc, port, tmp_path / f"replica{i}.log")
        print(f"\n{REPLICAS} replicas answered /healthz after {time.monotonic() - started:.1f} s")
        with servers.nginx(ports, lb_root) as url:
            _run(ws, url, tokens, capped_secret, procs[0], lb_root, ports)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)

    # the capped token: never more than the quota answered, over all replicas together
    key = f"token:{capped_info['id']}:{capped_secret[:12]}:requests"
    assert usage_of(ws.store, key, day_window()[0]) >= QUOTA


def _run(ws, url: str, tokens: list[str], capped: str, victim, lb_root: Path, ports: list[int]) -> None:
    # predictions through the balancer: each token asks for its 50 inputs once
    targets: list[tuple[str, int, int]] = []  # (request id, index, token number)
    for t, token in enumerate(tokens):
        r = httpx.post(
            f"{url}/v1/deployments/bank/predict",
            json={"inputs": ["card arrived"] * PER_TOKEN},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        targets += [(p["request_id"], p["index"], t) for p in r.json()["predictions"]]
    # the replica that answered writes its request log off the request path; feedback that
    # lands on another replica finds the request once that write is committed
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with ws.store.read() as session:
            if session.query(ServedRequest).count() >= EVENTS:
                break
        time.sleep(0.1)

    lock = threading.Lock()
    acked: dict[int, tuple[str, int, str]] = {}  # feedback id -> (request id, index, label)
    lost: list[str] = []  # feedback without an answer: 502 from the balancer or a broken connection
    capped_codes: Counter[int] = Counter()
    answered = threading.Semaphore(0)

    def client(k: int) -> None:
        mine = targets[k::CLIENTS]
        capped_left = CAPPED // CLIENTS
        with httpx.Client(base_url=url, timeout=30) as http:
            for i, (rid, idx, t) in enumerate(mine):
                label = LABELS[(k + i) % 3]
                try:
                    r = http.post(
                        "/v1/deployments/bank/feedback",
                        json={"request_id": rid, "index": idx, "label": label},
                        headers={"Authorization": f"Bearer {tokens[t]}"},
                    )
                except httpx.HTTPError as e:
                    r, why = None, repr(e)
                if r is not None and r.status_code == 201:
                    with lock:
                        acked[r.json()["feedback_id"]] = (rid, idx, label)
                    answered.release()
                else:
                    with lock:
                        lost.append(why if r is None else f"{r.status_code} {r.text[:200]}")
                if capped_left and i % 4 == 0:  # the capped token's requests, spread over the run
                    capped_left -= 1
                    try:
                        code = http.post(
                            "/v1/deployments/bank/predict",
                            json={"inputs": ["refund please"]},
                            headers={"Authorization": f"Bearer {capped}"},
                        ).status_code
                    except httpx.HTTPError:
                        code = 0
                    with lock:
                        capped_codes[code] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for _ in range(EVENTS // 2):
        assert answered.acquire(timeout=120), "feedback stopped being acknowledged"
    acked_at_kill = len(acked)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    for thread in threads:
        thread.join(180)
    assert not any(thread.is_alive() for thread in threads)
    seconds = time.monotonic() - started

    with ws.store.read() as session:
        rows = [(f.id, f.request_id, f.idx, f.label) for f in session.query(Feedback)]
    stored = {fid: (rid, idx, label) for fid, rid, idx, label in rows}
    per_input = Counter((rid, idx) for _, rid, idx, _ in rows)
    missing = [fid for fid, event in acked.items() if stored.get(fid) != event]
    twice = [key for key, n in per_input.items() if n > 1]
    log = (lb_root / "access.log").read_text().splitlines()
    victim_addr = f"127.0.0.1:{ports[0]}"
    failed_over = [line for line in log if f"upstream={victim_addr}, " in line]
    spread = Counter(line.split("upstream=")[1].split()[0].rstrip(",") for line in log if "/feedback" in line)
    print(
        f"\nnginx + {REPLICAS} replicas: {len(acked)} of {EVENTS} feedback events acknowledged "
        f"({acked_at_kill} before the SIGKILL), {len(rows)} stored, {len(missing)} acknowledged but "
        f"missing, {len(twice)} inputs stored twice, {len(lost)} lost in flight, {len(failed_over)} "
        f"requests failed over; feedback per replica {dict(spread)}; capped token {dict(capped_codes)}; "
        f"{seconds:.1f} s for the clients' {EVENTS + CAPPED} requests"
    )
    assert not missing, missing[:5]
    assert not twice, twice[:5]  # no POST was replayed on a second replica
    assert len(acked) + len(lost) == EVENTS
    # only what was in flight on the killed replica is lost: at most one request per client
    assert len(lost) <= CLIENTS, lost
    assert all(reason.startswith("502") for reason in lost), lost
    assert len(rows) >= len(acked) and len(rows) <= len(acked) + len(lost)
    assert set(spread) >= {f"127.0.0.1:{p}" for p in ports}  # the balancer used every replica
    assert failed_over, "no request was passed on from the killed replica to another"
    # the daily quota holds across the replicas: never more than QUOTA answered; the
    # requests past it are refused with 429; one lost in the kill may have been counted
    answered_capped, unanswered = capped_codes[200], capped_codes[502] + capped_codes[0]
    assert answered_capped <= QUOTA
    assert answered_capped + unanswered >= QUOTA
    assert capped_codes[429] == sum(capped_codes.values()) - answered_capped - unanswered
