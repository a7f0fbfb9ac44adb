"""Two writers that record the same alert at the same moment: both check, both find
nothing, both insert. The unique constraint stops the second, which checks again and
skips the row the first wrote, where it used to fail the whole request (found by the
watch SIGKILL test in CI: a client's ingest got a 500)."""

from __future__ import annotations

import threading
from datetime import timedelta

from llmos.core.util import utcnow


def _race(store, make, recorded_query):
    from llmos.store.db import insert_unrecorded

    both_checked = threading.Barrier(2, timeout=30)
    results, errors = [], []

    def recorded(session, row):
        found = session.scalar(recorded_query(row)) is not None
        if threading.current_thread().name not in checked:
            checked.add(threading.current_thread().name)
            both_checked.wait()  # neither has inserted yet: each finds nothing
        return found

    checked: set[str] = set()

    def write():
        try:
            results.append(insert_unrecorded(store, [make()], recorded))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, name=f"writer-{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


def test_the_same_watch_alert_from_two_writers_is_recorded_once(ws):
    from sqlalchemy import select

    from llmos.store.schema import WatchAlert
    from llmos.store.watch import list_alerts

    start = utcnow().replace(microsecond=0)

    def make():
        return WatchAlert(
            watch_id=7, series="all", metric="volume", kind="spike", episode_start=start,
            bucket_start=start, value=9.0, baseline=1.0, z=8.0, message="volume spike",
        )  # fmt: skip

    def query(row):
        return select(WatchAlert.id).where(
            WatchAlert.watch_id == row.watch_id, WatchAlert.episode_start == row.episode_start
        )

    results, errors = _race(ws.store, make, query)
    assert errors == []
    assert sorted(len(r) for r in results) == [0, 1]  # one writer recorded it, the other skipped
    (stored,) = list_alerts(ws.store, 7)
    assert stored.id == next(r for r in results if r)[0].id and stored.message == "volume spike"


def test_the_same_monitor_alert_from_two_writers_is_recorded_once(ws):
    from sqlalchemy import select

    from llmos.store.alerts import list_alerts
    from llmos.store.schema import MonitorAlert

    def make():
        return MonitorAlert(
            deployment="bank", model="bank@1", check="confidence", window_end=42,
            value=0.4, threshold=0.6, message="confidence 0.4 < 0.6",
        )  # fmt: skip

    def query(row):
        return select(MonitorAlert.id).where(
            MonitorAlert.deployment == row.deployment, MonitorAlert.window_end == row.window_end
        )

    results, errors = _race(ws.store, make, query)
    assert errors == []
    assert sorted(len(r) for r in results) == [0, 1]
    assert [a.window_end for a in list_alerts(ws.store, "bank")] == [42]


def test_an_alert_within_the_cooldown_of_a_recorded_one_is_skipped(ws):
    from llmos.store.schema import WatchAlert
    from llmos.store.watch import save_alerts

    start = utcnow().replace(microsecond=0)

    def alert(offset_h):
        t = start + timedelta(hours=offset_h)
        return WatchAlert(
            watch_id=3, series="all", metric="volume", kind="spike", episode_start=t,
            bucket_start=t, value=9.0, baseline=1.0, z=8.0, message=f"spike +{offset_h}h",
        )  # fmt: skip

    assert len(save_alerts(ws.store, [alert(0)], timedelta(hours=2))) == 1
    assert save_alerts(ws.store, [alert(1)], timedelta(hours=2)) == []  # the same episode
    assert [a.message for a in save_alerts(ws.store, [alert(3)], timedelta(hours=2))] == ["spike +3h"]
