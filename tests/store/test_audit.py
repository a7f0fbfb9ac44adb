"""The hash-chained audit log: tampering through SQL is caught and named (edited, deleted,
reordered), an untouched log of 10,000 events verifies in under a second, and concurrent
writers (threads and processes) never fork the chain."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from llmos.core.settings import Settings
from llmos.store.audit import GENESIS, acting_as, append_event, append_many, list_events, verify
from llmos.store.db import Store


@pytest.fixture
def store(home):
    return Store(Settings.resolve(home))


def _fill(store: Store, n: int) -> None:
    append_many(
        store,
        [
            {"action": "deployment.create", "target": f"d{i}", "outcome": "ok", "detail": {"i": i}}
            for i in range(n)
        ],
    )


def _sql(store: Store, statement: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(statement))


def test_events_chain_and_carry_who_what_when(store):
    first = append_event(store, "dataset.import", "intents@1", detail={"rows": 150})
    with acting_as("alice"):
        second = append_event(store, "deployment.create", "a0", detail={"model": "m@1"})
    events = list_events(store)
    assert [e.id for e in events] == [first.id, second.id]
    assert events[0].actor.startswith("local:") and events[1].actor == "alice"
    assert events[1].detail == {"model": "m@1"} and events[1].outcome == "ok"
    with store.engine.connect() as conn:
        prevs = conn.execute(text("SELECT prev_hash FROM audit_events ORDER BY id")).scalars().all()
    assert prevs == [GENESIS, first.hash]
    assert verify(store).ok and verify(store).message == "verified 2 events"
    assert verify(store).head == second.hash


def test_an_edited_entry_is_named(store):
    _fill(store, 20)
    _sql(store, "UPDATE audit_events SET actor = 'mallory' WHERE id = 7")
    verdict = verify(store)
    assert not verdict.ok and (verdict.bad_id, verdict.problem) == (7, "edited")
    assert "audit entry 7 was edited" in verdict.message


def test_a_deleted_entry_is_named(store):
    _fill(store, 20)
    _sql(store, "DELETE FROM audit_events WHERE id = 12")
    verdict = verify(store)
    assert not verdict.ok and (verdict.bad_id, verdict.problem) == (13, "deleted")
    assert "the entry before it was deleted" in verdict.message


def test_a_reordered_entry_is_named(store):
    _fill(store, 20)
    # swap entries 5 and 6, each keeping its own (valid) hash
    _sql(store, "UPDATE audit_events SET id = -5 WHERE id = 5")
    _sql(store, "UPDATE audit_events SET id = 5 WHERE id = 6")
    _sql(store, "UPDATE audit_events SET id = 6 WHERE id = -5")
    verdict = verify(store)
    assert not verdict.ok and (verdict.bad_id, verdict.problem) == (5, "reordered")


@pytest.mark.serial
def test_ten_thousand_events_verify_in_under_a_second(store):
    _fill(store, 10_000)
    start = time.perf_counter()
    verdict = verify(store)
    seconds = time.perf_counter() - start
    print(f"\nverified {verdict.count} audit events in {seconds * 1000:.0f} ms")
    assert verdict.ok and verdict.count == 10_000
    assert seconds < 1.0


def test_since_filters_by_time(store):
    old = (datetime.now(timezone.utc) - timedelta(hours=3)).isoformat(timespec="microseconds")
    append_many(store, [{"action": "user.add", "target": "old", "outcome": "ok", "at": old}])
    append_event(store, "user.add", "new")
    recent = list_events(store, since=datetime.now(timezone.utc) - timedelta(hours=1))
    assert [e.target for e in recent] == ["new"]
    assert verify(store).ok


WRITER = """
import sys
from llmos.core.settings import Settings
from llmos.store.audit import append_event
from llmos.store.db import Store
store = Store(Settings.resolve(sys.argv[1]))
for i in range(40):
    append_event(store, "test.write", f"proc{sys.argv[2]}-{i}")
"""


def test_concurrent_threads_and_processes_never_fork_the_chain(store, home):
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(home), str(p)], stderr=subprocess.PIPE)
        for p in range(2)
    ]

    def write(t: int) -> None:
        for i in range(40):
            append_event(store, "test.write", f"thread{t}-{i}")

    threads = [threading.Thread(target=write, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        _, errors = p.communicate(timeout=120)
        assert p.returncode == 0, errors.decode()
    verdict = verify(store)
    assert verdict.ok and verdict.count == 5 * 40, verdict.message
