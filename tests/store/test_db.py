import pytest
from sqlalchemy import create_engine, text

from llmos.core.errors import StoreError
from llmos.core.settings import Settings
from llmos.store import Store, migrations


@pytest.mark.local_only
def test_fresh_database_is_at_head_in_wal_mode(home):
    store = Store(Settings.resolve(home))
    with store.engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.HEAD
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_head_is_the_last_migration_file():
    assert migrations.revisions()[-1] == migrations.HEAD


@pytest.mark.local_only
def test_migrations_build_exactly_the_tables_schema_py_declares(home, tmp_path):
    """The migration files and the ORM classes cannot drift apart unnoticed."""
    from llmos.store.schema import Base

    migrated = Store(Settings.resolve(home))
    declared = create_engine(f"sqlite:///{tmp_path / 'declared.db'}")
    Base.metadata.create_all(declared)
    assert _shape(migrated.engine) == {
        **_shape(declared),
        "alembic_version": _shape(migrated.engine)["alembic_version"],
    }


@pytest.mark.local_only
def test_processes_opening_a_new_workspace_at_once_migrate_it_once(home):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: Store(Settings.resolve(home)), range(4)))
    with stores[0].engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        assert conn.execute(text("SELECT version FROM llmos_schema")).scalar() == 8


def _shape(engine):
    from sqlalchemy import inspect

    insp = inspect(engine)
    return {
        table: (
            sorted((c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)),
            sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(table)),
            sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
            sorted(
                (tuple(f["constrained_columns"]), f["referred_table"]) for f in insp.get_foreign_keys(table)
            ),
        )
        for table in insp.get_table_names()
    }


# the database an F1 workspace has (schema 1), as its llmos created it
V1_SCHEMA = """
CREATE TABLE llmos_schema (id INTEGER NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (id));
CREATE TABLE dataset_versions (id INTEGER NOT NULL, name VARCHAR(128) NOT NULL,
  version INTEGER NOT NULL, content_hash VARCHAR(64) NOT NULL, format VARCHAR(16) NOT NULL,
  source VARCHAR(1024) NOT NULL, num_rows INTEGER NOT NULL, columns JSON NOT NULL,
  label_column VARCHAR(256), label_distribution JSON, artifact VARCHAR(64) NOT NULL,
  size_bytes INTEGER NOT NULL, created_at DATETIME NOT NULL, PRIMARY KEY (id),
  UNIQUE (name, version), UNIQUE (name, content_hash));
CREATE INDEX ix_dataset_versions_name ON dataset_versions (name);
CREATE TABLE model_versions (id INTEGER NOT NULL, name VARCHAR(128) NOT NULL,
  version INTEGER NOT NULL, task VARCHAR(64) NOT NULL, base_model VARCHAR(1024) NOT NULL,
  method VARCHAR(32) NOT NULL, spec JSON NOT NULL, train_dataset_id INTEGER,
  test_dataset_id INTEGER, split JSON NOT NULL, metrics JSON NOT NULL, artifacts JSON NOT NULL,
  train_seconds DOUBLE NOT NULL, created_at DATETIME NOT NULL, PRIMARY KEY (id),
  UNIQUE (name, version), FOREIGN KEY(train_dataset_id) REFERENCES dataset_versions (id),
  FOREIGN KEY(test_dataset_id) REFERENCES dataset_versions (id));
CREATE INDEX ix_model_versions_name ON model_versions (name);
INSERT INTO llmos_schema VALUES (1, 1);
INSERT INTO model_versions VALUES (1, 'old', 1, 'text-classification', 'minilm', 'lora', '{}',
  NULL, NULL, '{}', '{}', '{}', 1.5, '2026-01-01 00:00:00');
"""


@pytest.mark.local_only
def test_version_1_database_is_migrated_to_the_shape_of_a_fresh_one(home, tmp_path):
    """A workspace made before the kernel gains the jobs and prediction tables, and keeps its models."""
    import sqlite3

    from llmos.store.models import get_model

    home.mkdir(parents=True)
    con = sqlite3.connect(home / "llmos.db")
    con.executescript(V1_SCHEMA)
    con.close()
    migrated = Store(Settings.resolve(home))
    fresh = Store(Settings.resolve(tmp_path / "fresh"))
    with migrated.engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.HEAD
    assert _shape(migrated.engine) == _shape(fresh.engine)
    old = get_model(migrated, "old@1")
    assert old.job_id is None and old.train_seconds == 1.5


@pytest.mark.local_only
def test_database_from_newer_llmos_is_refused(home):
    store = Store(Settings.resolve(home))
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    store.close()
    with pytest.raises(StoreError, match="schema 9999, newer than this llmos"):
        Store(Settings.resolve(home))


@pytest.mark.local_only
def test_legacy_database_from_an_unknown_runner_version_is_refused(home):
    import sqlite3

    home.mkdir(parents=True)
    con = sqlite3.connect(home / "llmos.db")
    con.executescript(V1_SCHEMA.replace("VALUES (1, 1)", "VALUES (1, 99)"))
    con.close()
    with pytest.raises(StoreError, match="version 99, newer than this llmos"):
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


def test_postgresql_database_is_migrated_from_empty_to_the_declared_shape(scale_servers):
    """On PostgreSQL too, the migration files build exactly what schema.py declares."""
    if scale_servers is None:
        pytest.skip("needs --backend scale")
    from llmos.core.settings import sqlalchemy_url
    from llmos.store.db import open_engine
    from llmos.store.schema import Base

    for name in ("mig_empty", "mig_declared"):
        scale_servers.admin(f"DROP DATABASE IF EXISTS {name}")
        scale_servers.admin(f"CREATE DATABASE {name}")
    migrated = open_engine(sqlalchemy_url(scale_servers.db_url("mig_empty")))
    assert migrations.upgrade(migrated) is None
    declared = open_engine(sqlalchemy_url(scale_servers.db_url("mig_declared")))
    Base.metadata.create_all(declared)
    with migrated.connect() as conn:
        assert migrations.current_revision(conn) == migrations.HEAD
    shape = _shape(migrated)
    assert shape == {**_shape(declared), "alembic_version": shape["alembic_version"]}
    migrated.dispose()
    declared.dispose()
