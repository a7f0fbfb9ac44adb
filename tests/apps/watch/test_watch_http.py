"""Watches over HTTP: the ingest route acknowledges a batch only once it is stored, four
clients posting at once while the server goes away lose nothing acknowledged, retries
are not counted twice, and after a restart on a reopened workspace the counts are exact
and no alert fires a second time. Bad rows get 422 naming the row; unknown watches 404."""

from __future__ import annotations

import threading

import httpx

from llmos import Client, Workspace
from llmos.api.server import ServerThread
from llmos.security.policy import open_policy
from llmos.serve.runtime import ServeConfig
from tests.apps.watch.test_watch import rows

BATCH = 20


def _post_all(url: str, batches: list[list[dict]], acked: list[str], stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for batch in batches:
            if stop.is_set():
                return
            try:
                r = client.post("/v1/watches/live/texts", json={"rows": batch})
            except httpx.HTTPError:
                return  # the server is gone: these rows were never acknowledged
            if r.status_code == 200:
                acked.extend(row["id"] for row in batch)


def test_acknowledged_rows_survive_a_restart_and_retries_count_once(senti_ws, tmp_path):
    ws = senti_ws
    ws.create_watch("live", "senti", topic_column="topic", detector={"warmup": 48})
    data = rows(60, per_hour=12, surge=(52, 55), seed=4, prefix="live")
    batches = [data[i : i + BATCH] for i in range(0, len(data), BATCH)]
    parts = [batches[k::4] for k in range(4)]
    acked: list[str] = []
    stop = threading.Event()
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1), policy=open_policy()) as url:
        threads = [threading.Thread(target=_post_all, args=(url, p, acked, stop)) for p in parts]
        for t in threads:
            t.start()
        while len(acked) < len(data) // 2:
            threading.Event().wait(0.02)
        stop.set()  # the clients stop mid-stream, then the server goes away
        for t in threads:
            t.join()
        r = httpx.post(f"{url}/v1/watches/live/texts", json={"rows": [{"text": "no time", "id": "x"}]})
        assert r.status_code == 422 and "row 0: no timestamp" in r.json()["error"]["message"]
        assert httpx.get(f"{url}/v1/watches/ghost").status_code == 404
    reopened = Workspace(ws.home)
    assert reopened.watch_status("live").texts == len(set(acked))  # every acknowledged row, once
    with ServerThread(reopened.store, ServeConfig(max_wait_ms=1), policy=open_policy()) as url:
        client = Client(url)
        first_alerts = None
        for _attempt in range(2):  # the clients retry everything, twice: nothing counts twice
            for batch in batches:
                client.ingest_watch("live", batch)
            alerts = client.watch_alerts("live")
            first_alerts = first_alerts or alerts
            assert [a.alert_id for a in alerts] == [a.alert_id for a in first_alerts]
        status = client.watch_status("live")
        assert status.texts == len(data)
        assert sum(p.volume for p in client.watch_series("live").points) == len(data)
        surge = [a for a in client.watch_alerts("live") if a.series == "all"]
        assert [a.metric for a in surge] == ["negative_share"] and abs(surge[0].episode_start.hour - 4) <= 1
        png = tmp_path / "live.png"
        assert client.plot_watch("live", "all", png).png == str(png) and png.stat().st_size > 1000
        assert client.ack_watch_alert("live", surge[0].alert_id).acked_at is not None
        assert client.watch_texts("live", surge[0].bucket, limit=3)[0].negative
