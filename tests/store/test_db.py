import pytest
from sqlalchemy import create_engine, text

from llmos.core.errors import StoreError
from llmos.core.settings import Settings
from llmos.store import Store, migrations


def test_fresh_database_is_stamped_latest_in_wal_mode(home):
    store = Store(Settings.resolve(home))
    with store.engine.connect() as conn:
        assert migrations.current_version(conn) == migrations.LATEST
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_pending_migrations_run_in_order(home, monkeypatch):
    Store(Settings.resolve(home)).close()
    start = migrations.LATEST
    ran = []
    steps = [lambda conn: ran.append(start + 1), lambda conn: ran.append(start + 2)]
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, *steps])
    monkeypatch.setattr(migrations, "LATEST", start + 2)
    engine = create_engine(f"sqlite:///{home / 'llmos.db'}")
    with engine.begin() as conn:
        assert migrations.upgrade(conn) == start
        assert migrations.current_version(conn) == start + 2
    assert ran == [start + 1, start + 2]


def test_database_from_newer_llmos_is_refused(home):
    store = Store(Settings.resolve(home))
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE llmos_schema SET version = 99"))
    store.close()
    with pytest.raises(StoreError, match="newer than this llmos"):
        Store(Settings.resolve(home))


def test_conflicting_write_is_rolled_back_with_a_clear_error(home):
    from llmos.store.schema import DatasetVersion

    store = Store(Settings.resolve(home))

    def row() -> DatasetVersion:
        return DatasetVersion(
            name="d",
            version=1,
            content_hash="x" * 64,
            format="csv",
            source="s",
            num_rows=1,
            columns=[],
            artifact="a" * 64,
            size_bytes=1,
        )

    with store.transaction() as session:
        session.add(row())
    with pytest.raises(StoreError, match="run the command again"), store.transaction() as session:
        session.add(row())
    with store.read() as session:
        assert session.query(DatasetVersion).count() == 1
