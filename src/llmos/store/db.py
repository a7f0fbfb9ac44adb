"""The store of one workspace: its metadata database and its artifact folder.

SQLite in WAL mode is the embedded default (readers never wait for the one writer);
any SQLAlchemy URL, PostgreSQL included, works through `LLMOS_DB_URL`. Every write runs
in `Store.transaction()`, so a failure leaves nothing half-written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from llmos.core.errors import StoreError
from llmos.core.settings import Settings
from llmos.store import migrations
from llmos.store.artifacts import ArtifactStore


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class Store:
    """Open (creating if needed) the workspace at `settings.home`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        try:
            settings.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create workspace {settings.home}: {exc.strerror}") from exc
        self.engine: Engine = create_engine(settings.db_url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            with self.engine.begin() as conn:
                migrations.upgrade(conn)
        except OperationalError as exc:
            raise StoreError(f"cannot open workspace database {settings.db_url}: {exc.orig}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.artifacts = ArtifactStore(settings.artifacts_dir)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error.

        Versions are numbered inside the transaction; when two processes add the same
        `NAME@V` at once, the unique constraint stops the second, which is told to retry.
        """
        try:
            with self._sessions() as session, session.begin():
                yield session
        except IntegrityError as exc:
            raise StoreError(
                f"another process wrote the same record at the same moment ({exc.orig}); "
                "run the command again"
            ) from exc

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()
