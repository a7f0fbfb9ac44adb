"""The store of one workspace: its metadata database and its artifact folder.

SQLite in WAL mode is the embedded default (readers never wait for the one writer);
any SQLAlchemy URL, PostgreSQL included, works through `LLMOS_DB_URL`. Every write runs
in `Store.transaction()`, so a failure leaves nothing half-written.

An encrypted workspace (`llmos init --encrypt`, `llmos keys enable`) loads its master key
when it opens, so a missing, wrong or loosely-permitted key stops every command at once;
the keyring then encrypts blobs (`artifacts`) and sealed columns (`store.crypto`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from llmos.core.errors import StoreError
from llmos.core.settings import Settings
from llmos.store import crypto, migrations
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
            migrations.upgrade(self.engine)
        except OperationalError as exc:
            raise StoreError(f"cannot open workspace database {settings.db_url}: {exc.orig}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.artifacts = ArtifactStore(settings.artifacts_dir)
        self.keyring: crypto.Keyring | None = None
        self._scratch_id = uuid.uuid4().hex[:12]
        key_id = crypto.recorded_key_id(self.engine)
        if key_id is not None:
            self.attach_keyring(
                crypto.Keyring(self.engine, crypto.load_master_key(settings, key_id), settings)
            )

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
