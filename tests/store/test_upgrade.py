"""A workspace made by the release before alembic (schema 7 of the hand-written runner,
encrypted; built by `data/make_release_workspace.py`) upgrades in place and keeps
everything it held."""

import sqlite3
import tarfile
from pathlib import Path

from sqlalchemy import text

from llmos.core.settings import Settings
from llmos.store import Store, audit, migrations
from llmos.store.datasets import get_dataset, load_frame
from llmos.store.deployments import get_deployment
from llmos.store.feedback import count_feedback, labelled_feedback
from llmos.store.models import get_model

RELEASE = Path(__file__).parent / "data" / "release-workspace.tar.gz"


def _unpack(tmp_path: Path) -> Path:
    with tarfile.open(RELEASE) as tar:
        tar.extractall(tmp_path, filter="tar")
    return tmp_path / "ws"


def test_release_workspace_upgrades_in_place_and_keeps_its_records(tmp_path):
    home = _unpack(tmp_path)
    con = sqlite3.connect(home / "llmos.db")
    assert con.execute("SELECT version FROM llmos_schema").fetchall() == [(7,)]
    events_before = con.execute("SELECT id, hash FROM audit_events ORDER BY id").fetchall()
    con.close()

    store = Store(Settings.resolve(home))
    assert store.encrypted
    with store.engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.HEAD
        assert conn.execute(text("SELECT version FROM llmos_schema")).scalar() == 8
        assert [tuple(r) for r in conn.execute(text("SELECT id, hash FROM audit_events ORDER BY id"))] == (
            events_before
        )
    frame = load_frame(store, get_dataset(store, "intents@1"))
    assert list(frame["label"]) == ["card", "transfer", "refund"]
    assert get_dataset(store, "intents").label_distribution == {"card": 1, "refund": 1, "transfer": 1}
    model = get_model(store, "intent@1")
    assert model.metrics == {"accuracy": 0.75} and model.job_id is None
    out = store.artifacts.materialize(model.artifacts, tmp_path / "model")
    assert (out / "weights.bin").read_bytes() == bytes(range(256)) * 64
    assert get_deployment(store, "support").options == {"max_batch": 8}
    assert count_feedback(store, "support") == 1
    assert list(labelled_feedback(store, "support")["text"]) == ["my card"]
    verdict = audit.verify(store)
    assert verdict.ok and verdict.count == len(events_before) == 6
    audit.record(store, "upgrade.check", "workspace")  # the chain goes on from the old head
    assert audit.verify(store).ok


def test_release_code_refuses_the_upgraded_database(tmp_path):
    """The legacy version row moves past 7, which the release's runner refuses as newer."""
    home = _unpack(tmp_path)
    Store(Settings.resolve(home)).close()
    con = sqlite3.connect(home / "llmos.db")
    (version,) = con.execute("SELECT version FROM llmos_schema").fetchone()
    assert version > migrations.LEGACY_LATEST
