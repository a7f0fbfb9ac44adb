"""Schema versions of the metadata database.

A hand-written equivalent of alembic's "create_all, then stamp head" recipe, kept small
because llmos owns every table: a fresh database is created from `schema.Base` and
stamped with `LATEST`; an older one runs each migration it lacks, in order, inside one
transaction. To change a table, edit `schema.py` and append a function here that brings
an existing database to the new shape (for example `ALTER TABLE ... ADD COLUMN`).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, insert, inspect, select, update

from llmos.core.errors import StoreError
from llmos.store.schema import Base, SchemaVersion


def add_deployments(conn: Connection) -> None:
    """Version 2: the `deployments` table of `llmos deploy` / `llmos serve`."""
    from llmos.store.schema import Deployment

    Deployment.__table__.create(conn)  # type: ignore[attr-defined]


# MIGRATIONS[i] brings a database from version i + 1 to version i + 2.
MIGRATIONS: list[Callable[[Connection], None]] = [add_deployments]
LATEST = 1 + len(MIGRATIONS)


def current_version(conn: Connection) -> int | None:
    if not inspect(conn).has_table(SchemaVersion.__tablename__):
        return None
    return conn.execute(select(SchemaVersion.version)).scalar_one_or_none()


def upgrade(conn: Connection) -> int:
    """Bring the database to `LATEST`; return the version it had before (0 if new)."""
    version = current_version(conn)
    if version is None:
        Base.metadata.create_all(conn)
        conn.execute(insert(SchemaVersion).values(id=1, version=LATEST))
        return 0
    if version > LATEST:
        raise StoreError(
            f"the workspace database is at schema version {version}, newer than this llmos "
            f"understands ({LATEST}): upgrade llmos"
        )
    for step in MIGRATIONS[version - 1 :]:
        step(conn)
    if version < LATEST:
        conn.execute(update(SchemaVersion).values(version=LATEST))
    return version
