"""Acknowledged feedback survives a killed server: `llmos serve` runs as a real process,
client threads post 1,000 feedback events, the server is SIGKILLed midway and restarted,
and every event that got a 2xx answer is in the store."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import httpx

from llmos.api.server import free_port
from llmos.store.schema import Feedback
from tests.servers import llmos_serve, wait_healthy

EVENTS = 1000
THREADS = 4
LABELS = ["card", "refund", "transfer"]


def _start(home: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = llmos_serve(home, port, log)
    wait_healthy(proc, port, log, timeout=60)
    return proc


def test_acknowledged_feedback_survives_sigkill(lora_ws, tmp_path):
    from llmos.security.identities import add_user, create_token

    ws = lora_ws
    ws.deploy("lora0@1", "bank")
    add_user(ws.store, "shop", "app")  # the server is secure by default: an app token of "bank"
    auth = {"Authorization": f"Bearer {create_token(ws.store, 'shop', deployments=['bank'])[0]}"}
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    server = _start(ws.home, port, log)
    acked: dict[int, tuple[str, int, str]] = {}  # feedback id -> (request id, index, label)
    answered = threading.Semaphore(0)
    try:
        targets = []
        for _ in range(EVENTS // 50):
            r = httpx.post(
                f"{url}/v1/deployments/bank/predict",
                json={"inputs": ["card arrived"] * 50},
                headers=auth,
                timeout=60,
            )
            assert r.status_code == 200, r.text
            targets += [(p["request_id"], p["index"]) for p in r.json()["predictions"]]
        lock = threading.Lock()

        def post(part: list[tuple[str, int]], seed: int) -> None:
            with httpx.Client(base_url=url, timeout=10, headers=auth) as client:
                for i, (rid, idx) in enumerate(part):
                    label = LABELS[(seed + i) % 3]
                    try:
                        r = client.post(
                            "/v1/deployments/bank/feedback",
                            json={"request_id": rid, "index": idx, "label": label},
                        )
                    except httpx.HTTPError:
                        return  # the server is gone
                    if 200 <= r.status_code < 300:
                        with lock:
                            acked[r.json()["feedback_id"]] = (rid, idx, label)
                        answered.release()

        threads = [threading.Thread(target=post, args=(targets[k::THREADS], k)) for k in range(THREADS)]
        for t in threads:
            t.start()
        for _ in range(EVENTS // 2):  # kill midway
            assert answered.acquire(timeout=60), "feedback stopped being acknowledged"
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
        for t in threads:
            t.join(30)
        assert EVENTS // 2 <= len(acked) < EVENTS, len(acked)
        port = free_port()  # the killed server's port may linger in TIME_WAIT
        url = f"http://127.0.0.1:{port}"
        server = _start(ws.home, port, log)  # the workspace opens cleanly after the crash
        r = httpx.post(
            f"{url}/v1/deployments/bank/feedback",
            json={"request_id": targets[0][0], "index": 0, "rating": 5},
            headers=auth,
        )
        assert r.status_code == 201
    finally:
        server.kill()
        server.wait(10)
    with ws.store.read() as session:
        stored = {f.id: (f.request_id, f.idx, f.label) for f in session.query(Feedback)}
    missing = [fid for fid in acked if stored.get(fid) != acked[fid]]
    print(f"\nSIGKILL: {len(acked)} of {EVENTS} feedback events acknowledged before the kill, "
          f"{len(stored) - 1} stored, {len(missing)} acknowledged but missing")  # fmt: skip
    assert not missing
