"""Schema versions of the metadata database, moved by alembic (MLflow's recipe: the
migration files live beside the store, in `versions/`, and ship with the package).

Every database, SQLite or PostgreSQL, new or old, reaches the same shape by the same
files: a new one runs them all from `0001`; one made by the hand-written runner of the
earlier releases (a `llmos_schema` row at version 1-7, no `alembic_version`) is stamped
at the revision of its version and runs the rest, so today's workspaces upgrade in place.

Opening a workspace reads `alembic_version` only (no alembic import) and migrates only
when it is behind `HEAD`. Migrating holds the database's write lock (SQLite `BEGIN
IMMEDIATE`; PostgreSQL an advisory transaction lock), so processes that open one
workspace at once never run a step twice, and a failed step leaves the old schema.

To change a table: edit `schema.py`, add `versions/NNNN_what.py` with
`down_revision` = the previous `HEAD`, and move `HEAD` here (a test checks they agree).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

from llmos.core.errors import StoreError

HEAD = "0017"
LEGACY_LATEST = 7  # the last `llmos_schema` version the hand-written runner made
_LOCK_KEY = 7_315_000_013  # pg_advisory_xact_lock key of schema migrations
FOLDER = Path(__file__).parent


def current_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


def legacy_version(conn: Connection) -> int | None:
    if not inspect(conn).has_table("llmos_schema"):
        return None
    return conn.execute(text("SELECT version FROM llmos_schema")).scalar_one_or_none()


def revisions() -> list[str]:
    """Every revision alembic finds in `versions/`, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(FOLDER))
    return [s.revision for s in reversed(list(script.walk_revisions()))]


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """One connection in a transaction that holds the lock migrations take."""
    if engine.dialect.name == "sqlite":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # a step that copies a table (alembic batch mode) drops the old one: with foreign
            # keys on, that would delete or refuse the rows that refer to it
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise StoreError(f"a migration step broke foreign keys: {broken[:3]}")
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                raise
            conn.exec_driver_sql("COMMIT")
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
    else:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            yield conn


def _newer(found: str) -> StoreError:
    return StoreError(
        f"the workspace database is at schema {found}, newer than this llmos understands "
        f"({HEAD}): upgrade llmos"
    )


def upgrade(engine: Engine) -> str | None:
    """Bring the database to `HEAD`; return the revision it had before (None if new)."""
    with engine.connect() as conn:
        before = current_revision(conn)
    if before == HEAD:
        return before
    from alembic import command
    from alembic.config import Config

    known = revisions()
    with _locked(engine) as conn:
        before = current_revision(conn)  # another process may have migrated meanwhile
        if before == HEAD:
            return before
        if before is not None and before not in known:
            raise _newer(before)
        config = Config()
        config.set_main_option("script_location", str(FOLDER))
        config.attributes["connection"] = conn
        if before is None:
            legacy = legacy_version(conn)
            if legacy is not None:
                if not 1 <= legacy <= LEGACY_LATEST:
                    raise _newer(f"version {legacy}")
                command.stamp(config, f"{legacy:04d}")
        command.upgrade(config, "head")
    return before
