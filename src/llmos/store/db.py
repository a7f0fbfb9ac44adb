"""The store of one workspace: its metadata database and its artifact store.

SQLite in WAL mode is the embedded default (readers never wait for the one writer);
PostgreSQL (through psycopg 3) by URL: `LLMOS_DB_URL` or `llmos init --db URL`, which
records it in the workspace (`core.settings`). Every write runs in
`Store.transaction()`, so a failure leaves nothing half-written; both databases run the
same alembic migrations (`store.migrations`). The artifact store is chosen by the URL's
scheme (`store.artifacts.open_artifacts`): the workspace folder, or `s3://bucket/prefix`.

A database or object store that cannot be reached stops the open within seconds
(`CONNECT_TIMEOUT_S`) with one line naming the URL (password hidden), before anything is
written to the workspace folder.

An encrypted workspace (`llmos init --encrypt`, `llmos keys enable`) loads its master key
when it opens, so a missing, wrong or loosely-permitted key stops every command at once;
the keyring then encrypts blobs (`artifacts`) and sealed columns (`store.crypto`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from llmos.core.errors import StoreError, first_line
from llmos.core.settings import Settings, sqlalchemy_url
from llmos.store import crypto, migrations
from llmos.store.artifacts import open_artifacts

CONNECT_TIMEOUT_S = 5


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """Wait for locks (first, so that the rest waits too), WAL, foreign keys. Switching a new
    database to WAL needs a moment alone with it: processes that open a new workspace at
    once can find it locked even with the busy timeout (SQLite does not always call the
    busy handler for that switch), so the switch is retried for up to the same 30 s."""
    import sqlite3
    import time

    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    deadline = time.monotonic() + 30
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def shown_url(url: str) -> str:
    """A database URL fit for messages and `llmos init` output: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def open_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"invalid database URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
        ) from None
    args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        args = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}, "pool_pre_ping": True}
    try:
        engine = create_engine(parsed, **args)
    except Exception as exc:  # an unknown dialect or a driver that is not installed
        raise StoreError(f"cannot use database URL {shown_url(url)}: {first_line(exc)}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _migrate(engine: Engine, url: str) -> None:
    try:
        migrations.upgrade(engine)
    except DBAPIError as exc:
        engine.dispose()
        reason = first_line(exc.orig or exc)
        raise StoreError(f"cannot open workspace database {shown_url(url)}: {reason}") from exc


def check_database(url: str) -> None:
    """Open `url`, bringing its schema to the latest (`llmos init --db`); one line if it fails."""
    url = sqlalchemy_url(url)
    engine = open_engine(url)
    _migrate(engine, url)
    engine.dispose()


class Store:
    """Open (creating if needed) the workspace at `settings.home`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        url = settings.db_url
        local = url.startswith("sqlite")
        # a remote object store and database are checked before the folder is touched
        self.artifacts = open_artifacts(settings)
        if local:  # the database file goes in the folder
            self._make_home()
        self.engine: Engine = open_engine(url)
        _migrate(self.engine, url)
        if not local:
            self._make_home()
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.keyring: crypto.Keyring | None = None
        self._scratch_id = uuid.uuid4().hex[:12]
        key_id = crypto.recorded_key_id(self.engine)
        if key_id is not None:
            self.attach_keyring(
                crypto.Keyring(self.engine, crypto.load_master_key(settings, key_id), settings)
            )

    def _make_home(self) -> None:
        try:
            self.settings.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create workspace {self.settings.home}: {exc.strerror}") from exc

    def attach_keyring(self, keyring: crypto.Keyring) -> None:
        """Encrypt from now on: blobs, and sealed columns (through the engine's dialect)."""
        keyring.data_key(crypto.FIELDS_OBJECT)  # the master key must open the workspace
        self.keyring = keyring
        self.artifacts.keyring = keyring
        self.engine.dialect.llmos_keyring = keyring  # type: ignore[attr-defined]

    @property
    def encrypted(self) -> bool:
        return self.keyring is not None

    def plain_dir(self, folder: Path) -> Path:
        """Where plaintext that would go to `folder` (under the workspace) goes: `folder`
        itself, or its place in a private folder outside an encrypted workspace."""
        if self.keyring is None:
            return folder
        home = self.settings.home
        # one subfolder per Store: two workspaces (or a recreated one) never share a folder
        return crypto.scratch_root(home) / self._scratch_id / folder.relative_to(home)

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


def insert_unrecorded(
    store: Store, rows: Sequence[Any], recorded: Callable[[Session, Any], bool], attempts: int = 3
) -> list[Any]:
    """Insert, in one transaction, the rows that `recorded(session, row)` does not find;
    return them (detached). Two writers that check at the same moment may both find
    nothing: the unique constraint stops the second, which checks again and now finds
    the first one's row, so a concurrent duplicate is skipped, never an error."""
    if not rows:
        return []
    columns = [a.key for a in inspect(type(rows[0])).column_attrs]
    for attempt in range(attempts):
        # fresh objects on each try: a rolled-back session leaves its objects unusable
        batch = [type(r)(**{k: getattr(r, k) for k in columns if getattr(r, k) is not None}) for r in rows]
        try:
            fresh = []
            with store.transaction() as session:
                for row in batch:
                    if not recorded(session, row):
                        session.add(row)
                        session.flush()
                        fresh.append(row)
                for row in fresh:
                    session.expunge(row)
            return fresh
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
