"""Acknowledged texts survive a killed server: `llmos serve` runs as a real process, four
clients post 10,000 texts in batches over HTTP, the server is SIGKILLed midway and
restarted; every text acknowledged before the kill is counted, the clients then resend
everything (as a client that never heard back must) and nothing is counted twice, the
series add up to the texts, and no alert fires twice."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import httpx

from llmos.api.server import free_port
from tests.apps.watch.test_watch import rows
from tests.servers import llmos_serve, wait_healthy

TEXTS = 10_000
CLIENTS = 4
BATCH = 250


def _start(home: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`llmos serve` as a real process, once it answers (minutes allowed: the CI machine is shared)."""
    proc = llmos_serve(home, port, log)
    wait_healthy(proc, port, log, timeout=300)
    return proc


def _post(url: str, auth: dict, batches: list[list[dict]], acked: list[str], lock: threading.Lock,
          answered: threading.Semaphore) -> None:  # fmt: skip
    with httpx.Client(base_url=url, timeout=300, headers=auth) as client:
        for batch in batches:
            try:
                r = client.post("/v1/watches/durable/texts", json={"rows": batch})
            except httpx.HTTPError:
                return  # the server is gone: this batch was never acknowledged
            assert r.status_code == 200, r.text
            with lock:
                acked.extend(row["id"] for row in batch)
            answered.release()


def _stored(ws) -> tuple[list[str], int, list[tuple]]:
    """(client ids of the stored texts, the volume the `all` series adds up to, alerts)."""
    from sqlalchemy import select

    from llmos.store.schema import Watch, WatchText

    watch = ws.watch_status("durable").watch
    with ws.store.read() as session:
        # this watch's texts only: the workspace is shared with the other watch tests
        ids = list(
            session.scalars(
                select(WatchText.client_id)
                .join(Watch, Watch.id == WatchText.watch_id)
                .where(Watch.name == watch.name)
            )
        )
    volume = sum(p.volume for p in ws.watch_series("durable").points)
    alerts = [(a.series, a.metric, a.episode_start) for a in ws.watch_alerts(watch.name)]
    return ids, volume, alerts


def test_acknowledged_texts_survive_sigkill_and_count_once(senti_ws, tmp_path):
    from llmos import Workspace
    from llmos.security.identities import add_user, create_token

    ws = senti_ws
    ws.create_watch("durable", "senti", topic_column="topic", detector={"warmup": 48})
    add_user(ws.store, "feeder", "developer")
    auth = {"Authorization": f"Bearer {create_token(ws.store, 'feeder')[0]}"}
    data = rows(TEXTS // 100, per_hour=100, surge=(80, 83), seed=11, prefix="d")
    batches = [data[i : i + BATCH] for i in range(0, len(data), BATCH)]
    parts = [batches[k::CLIENTS] for k in range(CLIENTS)]
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    server = _start(ws.home, port, log)
    acked: list[str] = []
    lock, answered = threading.Lock(), threading.Semaphore(0)
    try:
        threads = [threading.Thread(target=_post, args=(url, auth, p, acked, lock, answered)) for p in parts]
        for t in threads:
            t.start()
        for _ in range(len(batches) // 2):  # kill midway through the ingest
            assert answered.acquire(timeout=300), (
                f"batches stopped being acknowledged: {log.read_text()[-2000:]}"
            )
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
        for t in threads:
            t.join(300)
        assert len(batches) // 2 * BATCH <= len(acked) < TEXTS
        reopened = Workspace(ws.home)
        ids, volume, alerts_after_kill = _stored(reopened)
        assert set(acked) <= set(ids)  # every acknowledged text is counted ...
        assert len(ids) == len(set(ids)) == volume  # ... once, and the series agree with the texts
        # restarted, the clients resend everything: nothing counts twice, no alert twice
        port = free_port()  # the killed server's port may linger in TIME_WAIT
        url = f"http://127.0.0.1:{port}"
        server = _start(ws.home, port, log)
        acked.clear()
        threads = [threading.Thread(target=_post, args=(url, auth, p, acked, lock, answered)) for p in parts]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        assert len(acked) == TEXTS
    finally:
        server.kill()
        server.wait(10)
    ids, volume, alerts = _stored(Workspace(ws.home))
    assert len(ids) == len(set(ids)) == volume == TEXTS
    assert len(alerts) == len(set(alerts)) and set(alerts_after_kill) <= set(alerts)
    assert alerts  # the surge of hours 80-83 alerted (when is not judged here: with four
    # clients posting out of order a bucket may be judged while it still fills)
