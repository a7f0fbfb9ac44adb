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
from llmos.store.deployments import find_deployment, get_deployment
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


def test_a_workspace_made_before_projects_opens_with_everything_in_default(tmp_path):
    """F17: every row of the old workspace lands in `default`, names stay theirs, and a new
    project may reuse them; the audit chain still verifies, with new events in any project."""
    from llmos.store.projects import create_project, list_projects
    from llmos.store.schema import Base, Scoped
    from llmos.store.scope import in_project

    home = _unpack(tmp_path)
    scoped = [t.name for t in Base.metadata.sorted_tables if "project" in t.c]
    con = sqlite3.connect(home / "llmos.db")
    old = {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    before = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in scoped if t in old}
    con.close()
    assert sum(before.values()) > 10  # datasets, models, deployments, feedback, audit events ...
    store = Store(Settings.resolve(home))
    assert [p.name for p in list_projects(store)] == ["default"]
    with store.engine.connect() as conn:
        for table, count in before.items():  # every row kept (the tables copied to change
            rows = conn.execute(text(f"SELECT project, count(*) FROM {table} GROUP BY project")).all()
            assert [tuple(r) for r in rows] == ([("default", count)] if count else []), table  # UNIQUE)
    assert issubclass(type(get_dataset(store, "intents")), Scoped)
    create_project(store, "alpha")
    with in_project("alpha"):
        assert find_deployment(store, "support") is None  # default's names are not alpha's
        audit.record(store, "upgrade.check", "alpha")
    assert get_deployment(store, "support").options == {"max_batch": 8}
    verdict = audit.verify(store)
    assert verdict.ok and verdict.count == 6 + 2  # the project's creation and the check
