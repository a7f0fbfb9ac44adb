"""Encryption at rest: its status, turning it on, rotating the master key (`keys:admin`,
which only the admin role holds; the logic is `llmos.store.keys`).

Over HTTP only the status and a rotation to a fresh random key are offered. A rotation
moves no key material over the wire (the server writes the new key to its own key file,
and other processes on the workspace load it by the id the database names), so it is
safe to ask from afar. `enable_encryption` is not: it rewrites every stored blob in place,
deletes the plaintext caches and the jobs' run folders and compacts the database, which
would pull files from under the jobs and requests a server is running; it is a one-off
migration to run on the workspace's machine (`llmos keys enable`) with the server stopped.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from llmos.ops.context import Context
from llmos.ops.registry import operation
from llmos.ops.results import Result

PERMISSION = "keys:admin"


class EncryptionStatus(Result):
    encrypted: bool
    key_id: str | None = Field(None, description="The master key's id (a hash, not the key)")
    key_source: str | None = Field(None, description="The key file, or LLMOS_MASTER_KEY")
    data_keys: int = 0
    data_keys_by_master_key: dict[str, int] = Field(default_factory=dict)
    blobs: int = 0
    blobs_plaintext: int = 0
    algorithm: str | None = None


class EncryptionEnabled(EncryptionStatus):
    created_key_file: bool = False
    blobs_encrypted_now: int = 0
    values_resealed: int = 0


class KeyRotation(EncryptionStatus):
    old_key_id: str
    rewrapped: int = Field(description="Data keys re-wrapped under the new master key")


@operation(PERMISSION)
def encryption_status(ctx: Context) -> EncryptionStatus:
    """Whether the workspace is encrypted, under which master key, and how many blobs are."""
    from llmos.store.keys import encryption_status as status

    return EncryptionStatus(**status(ctx.store))


@operation(PERMISSION)
def enable_encryption(ctx: Context) -> EncryptionEnabled:
    """Encrypt the workspace from now on, and everything it already holds (local only)."""
    from llmos.store.keys import enable_encryption as enable

    return EncryptionEnabled(**enable(ctx.store))


@operation(PERMISSION)
def rotate_key(ctx: Context, new_key_file: str | os.PathLike[str] | None = None) -> KeyRotation:
    """Re-wrap every data key under a new master key (from `new_key_file` on the
    workspace's machine, else a fresh random one); the data is not re-encrypted."""
    from llmos.store.keys import rotate_master_key

    return KeyRotation(**rotate_master_key(ctx.store, Path(new_key_file) if new_key_file else None))
