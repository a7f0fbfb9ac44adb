"""`llmos keys`: turn encryption at rest on for a workspace, rotate its master key, report.

`enable_encryption` works on a workspace that already holds data: it records the
workspace's `fields` data key (from then on the workspace counts as encrypted and every
new blob and sealed value is encrypted), then encrypts each plaintext blob beside itself
and renames the ciphertext over it once its data key is committed, reseals the database
values that can hold row text, removes the plaintext caches (hard links to the old
blobs) and compacts the SQLite file so no freed page keeps old plaintext. Each step can
be interrupted and `llmos keys enable` run again: it carries on where it stopped.
`rotate_master_key` is described in `store.crypto` (one transaction re-wraps every
data key; the key files are swapped after the commit).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.orm.attributes import flag_modified

from llmos.core.errors import StoreError, UsageError
from llmos.core.util import utcnow
from llmos.store import crypto
from llmos.store.artifacts import blob_object
from llmos.store.audit import record
from llmos.store.db import Store
from llmos.store.schema import DatasetVersion, Feedback, Job, ServedRequest


def _master_for_enable(store: Store) -> tuple[crypto.MasterKey, bool]:
    """The configured master key, creating the key file when there is none; (key, created)."""
    if os.environ.get(crypto.ENV_KEY):
        return crypto.load_master_key(store.settings, None), False
    path = crypto.key_file_path(store.settings)
    if path.exists():
        return crypto.read_key_file(path), False
    crypto.write_key_file(path, crypto.new_key())
    return crypto.read_key_file(path), True


def enable_encryption(store: Store) -> dict[str, Any]:
    """Encrypt the workspace from now on, and everything it already holds."""
    created = False
    if store.artifacts.remote and any(not enc for _, enc in store.artifacts.blob_states()):
        raise StoreError(
            f"{store.artifacts.describe()} already holds plaintext blobs, which llmos does not re-encrypt "
            "in an object store: enable encryption before the first upload (`llmos init --encrypt`)"
        )
    if store.keyring is None:
        master, created = _master_for_enable(store)
        with store.engine.begin() as conn:
            conn.execute(
                insert(crypto.data_keys).values(
                    object=crypto.FIELDS_OBJECT,
                    key_id=master.key_id,
                    wrapped=crypto.wrap(master, crypto.FIELDS_OBJECT, crypto.new_key()),
                    created_at=utcnow(),
                )
            )
        store.attach_keyring(crypto.Keyring(store.engine, master, store.settings))
    keyring = store.keyring
    assert keyring is not None
    encrypted = 0
    for blob in store.artifacts.files():
        if not crypto.is_encrypted_file(blob):
            _encrypt_in_place(keyring, blob)
            encrypted += 1
    resealed = _reseal(store)
    settings = store.settings
    for leftover in (settings.cache_dir / "models", settings.runs_dir):
        shutil.rmtree(leftover, ignore_errors=True)  # plaintext copies and hard links
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    _compact(store)
    record(store, "keys.enable", "workspace", detail={"blobs": encrypted, "values": resealed})
    return {
        **encryption_status(store),
        "created_key_file": created,
        "blobs_encrypted_now": encrypted,
        "values_resealed": resealed,
    }


def _encrypt_in_place(keyring: crypto.Keyring, blob: Path) -> None:
    digest = blob.parent.name + blob.name
    key = keyring.data_key(blob_object(digest), create=True)  # committed before the rename
    fd, tmp = tempfile.mkstemp(dir=blob.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out, blob.open("rb") as src:
            crypto.encrypt_stream(key, blob_object(digest), src, out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o444)
        os.replace(tmp, blob)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _reseal(store: Store) -> int:
    """Write back every value of a sealed column so it is stored encrypted."""
    count = 0
    with store.transaction() as session:
        for ds in session.scalars(select(DatasetVersion)):
            if ds.label_distribution is not None:
                flag_modified(ds, "label_distribution")
                count += 1
        for job in session.scalars(select(Job).where(Job.error.is_not(None))):
            flag_modified(job, "error")
            count += 1
        for served in session.scalars(select(ServedRequest)):
            flag_modified(served, "inputs")
            flag_modified(served, "output")
            count += 1
        for fb in session.scalars(select(Feedback)):
            for name in ("inputs", "answer"):
                if getattr(fb, name) is not None:
                    flag_modified(fb, name)
            count += 1
    return count


def _compact(store: Store) -> None:
    """Rewrite the SQLite file and empty its write-ahead log, dropping freed pages that
    may still hold values from before they were sealed."""
    if store.engine.dialect.name != "sqlite":
        return
    with store.engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        conn.execute(text("VACUUM"))
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


def rotate_master_key(store: Store, new_key_file: Path | None = None) -> dict[str, Any]:
    """Re-wrap every data key under a new master key (from `new_key_file`, else a fresh
    random one written to the workspace's key file); the data is not re-encrypted."""
    keyring = store.keyring
    if keyring is None:
        raise UsageError("this workspace is not encrypted: run `llmos keys enable` first")
    old = keyring.master
    if new_key_file is not None:
        new = crypto.read_key_file(Path(new_key_file).expanduser().resolve())
    elif old.from_env:
        raise UsageError(
            f"the master key comes from {crypto.ENV_KEY}: pass --new-key-file with the new key "
            "(a 0600 file of 32 bytes in base64), then set the variable to it"
        )
    else:
        new = crypto.MasterKey(crypto.new_key(), old.source)
    if new.key_id == old.key_id:
        raise UsageError(f"the new master key is the current one ({old.key_id}); give a different key")
    if old.from_env:  # the user keeps the new key wherever they keep keys
        count = crypto.rewrap_all(store.engine, old, new)
    else:
        path = Path(old.source)
        pending = crypto.pending_path(path)
        pending.unlink(missing_ok=True)  # a failed rotation's leftover: nothing is wrapped under it
        crypto.write_key_file(pending, new.key)
        count = crypto.rewrap_all(store.engine, old, new)  # the commit point
        backup = crypto.backup_path(path)
        os.replace(path, backup)  # the old key is kept until the new one is in place
        os.replace(pending, path)
        crypto._fsync_dir(path.parent)
        backup.unlink()
        new = crypto.MasterKey(new.key, str(path))
    keyring.master = new
    keyring.forget()
    detail = {"from": old.key_id, "to": new.key_id, "rewrapped": count}
    record(store, "keys.rotate", "workspace", detail=detail)
    return {**encryption_status(store), "old_key_id": old.key_id, "rewrapped": count}


def encryption_status(store: Store) -> dict[str, Any]:
    """Whether the workspace is encrypted, under which key, and how many blobs are."""
    blobs = store.artifacts.blob_states()
    plain = [digest for digest, encrypted in blobs if not encrypted]
    with store.engine.connect() as conn:
        key_ids = Counter(conn.execute(select(crypto.data_keys.c.key_id)).scalars())
    keyring = store.keyring
    return {
        "encrypted": keyring is not None,
        "key_id": keyring.master.key_id if keyring else None,
        "key_source": keyring.master.source if keyring else None,
        "data_keys": sum(key_ids.values()),
        "data_keys_by_master_key": dict(key_ids),
        "blobs": len(blobs),
        "blobs_plaintext": len(plain),
        "algorithm": "AES-256-GCM, envelope (one data key per object)" if keyring else None,
    }
