"""Encryption at rest: AES-256-GCM envelope encryption of blobs and of database values.

Keys. One master key per workspace (32 random bytes) comes from the environment variable
`LLMOS_MASTER_KEY` (base64) or from a key file (`LLMOS_MASTER_KEY_FILE`, default
`$LLMOS_HOME/master.key`, base64 text) that only its owner may read (mode 0600; a looser
file is refused). Its key id is a hash of the key, so a wrapped key names the master key
that wraps it without revealing it. Every stored object gets its own random data key:
each artifact blob (`blob:<sha256>`: dataset and prediction Parquet copies, model and
adapter files) and one key (`fields`) for the database values that can hold row text.
Data keys live in the `data_keys` table, wrapped by the master key with AES-GCM; the
associated data of a wrapped key is its object name and the master key id, so a wrapped
key moved to another object does not open.

Blobs. An encrypted blob is `LLMOSENC`, a version byte, the chunk size, then the
plaintext in 16 MiB chunks, each sealed with the object's data key (the nonce is the
chunk's index: a data key encrypts one plaintext only). A chunk's associated data binds
the object identity (the SHA-256 of the plaintext, which stays the blob's name, so
deduplication still works), the chunk index and a last-chunk flag: a swapped, reordered,
truncated or extended blob fails its integrity check instead of decrypting to something
else. Reads decrypt into memory, or into a private temporary folder outside the
workspace (`scratch_root`, removed when the process exits), never under LLMOS_HOME.

Database values. `seal_text`/`open_text` (and the `SealedText`/`SealedJSON` column types
built on them) encrypt a value with the `fields` key, the column's name as associated
data; sealed values read back transparently and unsealed ones (from before encryption
was enabled) pass through until `llmos keys enable` reseals them.

Rotation (`rotate_master_key`) re-wraps every data key under a new master key in ONE
database transaction, without touching the encrypted data, so it is atomic: either every
key is wrapped under the old master key or every one under the new. The new key file is
written first as `master.key.new`; after the commit the old file is moved to
`master.key.old`, the new one into place and the backup removed. A crash at any point
leaves a key file that opens the workspace: `load_master_key` looks at the key file, the
`.new` and the `.old` file and takes (and puts in place) the one whose id the database
names. Enabling encryption on a workspace (`store.keys.enable_encryption`) encrypts each
blob beside itself and renames it over the plaintext, after its data key is committed,
so it can be interrupted and run again.

Hand-written on top of `cryptography` (AESGCM) because the chunked blob format and the
key table are specific to a content-addressed store; the primitives are the library's.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import JSON, Connection, Engine, LargeBinary, String, Text, column, insert, select, table
from sqlalchemy.types import TypeDecorator

from llmos.core.errors import StoreError
from llmos.core.settings import Settings
from llmos.core.util import utcnow

ENV_KEY = "LLMOS_MASTER_KEY"
ENV_KEY_FILE = "LLMOS_MASTER_KEY_FILE"
KEY_FILE_NAME = "master.key"
FIELDS_OBJECT = "fields"  # the data key of sealed database values; its row marks encryption on
MAGIC = b"LLMOSENC"
FORMAT_VERSION = 1
CHUNK = 16 << 20
TAG = 16
HEADER = len(MAGIC) + 1 + 4
SEALED_PREFIX = "llmos-sealed:v1:"

data_keys = table(
    "data_keys",
    column("object", String),
    column("key_id", String),
    column("wrapped", LargeBinary),
    column("created_at"),
)


# --- master keys ------------------------------------------------------------------------


def key_id_of(key: bytes) -> str:
    return hashlib.sha256(b"llmos master key id\0" + key).hexdigest()[:16]


@dataclass(frozen=True)
class MasterKey:
    key: bytes = field(repr=False)  # never printed in a log or a traceback
    source: str  # the key file's path, or ENV_KEY

    @property
    def key_id(self) -> str:
        return key_id_of(self.key)

    @property
    def from_env(self) -> bool:
        return self.source == ENV_KEY


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def parse_key(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise StoreError(f"{source}: not a master key (expected 32 bytes in base64, as `llmos keys` writes)")
    return key


def key_file_path(settings: Settings) -> Path:
    env = os.environ.get(ENV_KEY_FILE)
    return Path(env).expanduser().resolve() if env else settings.home / KEY_FILE_NAME


def pending_path(path: Path) -> Path:
    return path.with_name(path.name + ".new")


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".old")


def read_key_file(path: Path) -> MasterKey:
    """Read a key file, refusing one that others than its owner may read or write."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise StoreError(f"master key file {path} does not exist") from None
    if mode & 0o077:
        raise StoreError(
            f"master key file {path} has permissions {mode:04o}, open to other users: run `chmod 600 {path}`"
        )
    return MasterKey(parse_key(path.read_text(), str(path)), str(path))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_key_file(path: Path, key: bytes) -> None:
    """Create `path` (mode 0600 from the start) holding `key`; never overwrites."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise StoreError(f"master key file {path} already exists; move it away first") from None
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(key).decode() + "\n")
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(path.parent)


def load_master_key(settings: Settings, expected_id: str | None) -> MasterKey:
    """The master key from `LLMOS_MASTER_KEY` or the key file; with `expected_id` (the id
    the database's wrapped keys name), also the `.new`/`.old` file a crash left behind."""
    env = os.environ.get(ENV_KEY)
    if env:
        master = MasterKey(parse_key(env, ENV_KEY), ENV_KEY)
        if expected_id is not None and master.key_id != expected_id:
            raise StoreError(
                f"{ENV_KEY} holds key {master.key_id}, but this workspace is encrypted under key "
                f"{expected_id}: set it to the workspace's current master key"
            )
        return master
    path = key_file_path(settings)
    found: list[MasterKey] = []
    for candidate in (path, pending_path(path), backup_path(path)):
        if candidate.exists():
            master = read_key_file(candidate)
            if expected_id is None or master.key_id == expected_id:
                if candidate != path:  # a rotation stopped after its commit: finish it
                    os.replace(candidate, path)
                    backup_path(path).unlink(missing_ok=True)
                    _fsync_dir(path.parent)
                    master = MasterKey(master.key, str(path))
                return master
            found.append(master)
    if not found:
        raise StoreError(
            f"this workspace is encrypted but its master key file {path} is missing: restore it, "
            f"or set {ENV_KEY_FILE} (a key file) or {ENV_KEY}"
        )
    raise StoreError(
        f"master key file {path} holds key {found[0].key_id}, but this workspace is encrypted under "
        f"key {expected_id}: restore the workspace's key file"
    )


# --- data keys --------------------------------------------------------------------------


def _wrap_ad(obj: str, key_id: str) -> bytes:
    return b"llmos data key\0" + obj.encode() + b"\0" + key_id.encode()


def wrap(master: MasterKey, obj: str, data_key: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(master.key).encrypt(nonce, data_key, _wrap_ad(obj, master.key_id))


def unwrap(master: MasterKey, obj: str, wrapped: bytes) -> bytes:
    try:
        return AESGCM(master.key).decrypt(wrapped[:12], wrapped[12:], _wrap_ad(obj, master.key_id))
    except InvalidTag:
        raise StoreError(
            f"the data key of {obj} does not open with master key {master.key_id}: the key table "
            "was altered; restore the workspace database from a backup"
        ) from None


def recorded_key_id(engine: Engine) -> str | None:
    """The master key id this workspace is encrypted under, or None when it is not."""
    with engine.connect() as conn:
        return conn.execute(
            select(data_keys.c.key_id).where(data_keys.c.object == FIELDS_OBJECT)
        ).scalar_one_or_none()


def lock_key_table(conn: Connection) -> None:
    """Take the write lock first (a no-op update), so what is read next cannot be changed
    by a rotation before this transaction writes (SQLite and PostgreSQL alike)."""
    conn.execute(
        data_keys.update().where(data_keys.c.object == FIELDS_OBJECT).values(key_id=data_keys.c.key_id)
    )


class Keyring:
    """The master key and the data keys of one encrypted workspace. When another process
    rotated the master key meanwhile, the new one is loaded on first need."""

    def __init__(self, engine: Engine, master: MasterKey, settings: Settings) -> None:
        self.engine, self.master, self.settings = engine, master, settings
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def _master_for(self, key_id: str) -> MasterKey:
        if key_id != self.master.key_id:
            self.master = load_master_key(self.settings, key_id)
        return self.master

    def data_key(self, obj: str, create: bool = False) -> bytes:
        """The data key of `obj`; with `create`, a new one is made and committed first when
        it has none (before any ciphertext exists, so no blob is ever left without its key)."""
        with self._lock:
            if obj in self._cache:
                return self._cache[obj]
        with self.engine.begin() as conn:
            if create:
                lock_key_table(conn)
            row = conn.execute(
                select(data_keys.c.key_id, data_keys.c.wrapped).where(data_keys.c.object == obj)
            ).first()
            if row is None:
                if not create:
                    raise StoreError(
                        f"{obj} is encrypted but its data key is missing from the workspace database: "
                        "restore the database from a backup"
                    )
                current = conn.execute(
                    select(data_keys.c.key_id).where(data_keys.c.object == FIELDS_OBJECT)
                ).scalar_one()
                master = self._master_for(current)
                key = new_key()
                conn.execute(
                    insert(data_keys).values(
                        object=obj, key_id=master.key_id, wrapped=wrap(master, obj, key), created_at=utcnow()
                    )
                )
            else:
                key = unwrap(self._master_for(row.key_id), obj, row.wrapped)
        with self._lock:
            self._cache[obj] = key
        return key

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    # database values
    def seal_text(self, text: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self.data_key(FIELDS_OBJECT)).encrypt(nonce, text.encode(), _field_ad(context))
        return SEALED_PREFIX + base64.b64encode(nonce + sealed).decode()

    def open_text(self, value: str, context: str) -> str:
        if not is_sealed(value):
            return value
        raw = base64.b64decode(value[len(SEALED_PREFIX) :])
        try:
            plain = AESGCM(self.data_key(FIELDS_OBJECT)).decrypt(raw[:12], raw[12:], _field_ad(context))
        except InvalidTag:
            raise StoreError(
                f"an encrypted value of {context} fails its integrity check: the database was altered; "
                "restore it from a backup"
            ) from None
        return plain.decode()

    def seal_json(self, value: Any, context: str) -> str:
        return self.seal_text(json.dumps(value), context)

    def open_json(self, value: Any, context: str) -> Any:
        return json.loads(self.open_text(value, context)) if is_sealed(value) else value


def _field_ad(context: str) -> bytes:
    return b"llmos field\0" + context.encode()


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def seal_text(keyring: Keyring | None, text: str, context: str) -> str:
    """`text` encrypted for a database value when the workspace is (`store.keyring`), else
    as it is; `context` (e.g. "feedback.text") is bound to it as associated data."""
    return text if keyring is None else keyring.seal_text(text, context)


def open_text(keyring: Keyring | None, value: str, context: str) -> str:
    if not is_sealed(value):
        return value
    if keyring is None:
        raise StoreError(f"{context} holds an encrypted value but no master key is loaded")
    return keyring.open_text(value, context)


def seal_json(keyring: Keyring | None, value: Any, context: str) -> Any:
    return value if keyring is None else keyring.seal_json(value, context)


def open_json(keyring: Keyring | None, value: Any, context: str) -> Any:
    return json.loads(open_text(keyring, value, context)) if is_sealed(value) else value


# --- sealed columns ------------------------------------------------------------------------


def keyring_of(dialect: Any) -> Keyring | None:
    """The keyring `Store` attached to its engine's dialect (None: not encrypted)."""
    return getattr(dialect, "llmos_keyring", None)


def _need_keyring(dialect: Any, context: str) -> Keyring:
    keyring = keyring_of(dialect)
    if keyring is None:
        raise StoreError(f"{context} holds an encrypted value but no master key is loaded")
    return keyring


class SealedText(TypeDecorator[str]):
    """A text column encrypted with the workspace's `fields` key when encryption is on.
    Use it for any column that can hold user text: `mapped_column(SealedText("table.col"))`."""

    impl = Text
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        keyring = keyring_of(dialect)
        return value if value is None or keyring is None else keyring.seal_text(value, self.context)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        if not is_sealed(value):
            return value
        assert value is not None
        return _need_keyring(dialect, self.context).open_text(value, self.context)


class SealedJSON(TypeDecorator[Any]):
    """A JSON column whose value is stored as a sealed JSON string when encryption is on."""

    impl = JSON
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        keyring = keyring_of(dialect)
        return value if value is None or keyring is None else keyring.seal_json(value, self.context)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if not is_sealed(value):
            return value
        return _need_keyring(dialect, self.context).open_json(value, self.context)


# --- blobs ----------------------------------------------------------------------------------


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _chunk_ad(obj: str, index: int, last: bool) -> bytes:
    return b"llmos blob v1\0" + obj.encode() + b"\0" + index.to_bytes(8, "big") + (b"\1" if last else b"\0")


def is_encrypted_file(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def encrypt_stream(key: bytes, obj: str, src: BinaryIO, dst: BinaryIO, chunk: int = CHUNK) -> None:
    aes = AESGCM(key)
    dst.write(MAGIC + bytes([FORMAT_VERSION]) + chunk.to_bytes(4, "big"))
    index, block = 0, src.read(chunk)
    while True:
        following = src.read(chunk) if len(block) == chunk else b""
        last = not following
        dst.write(aes.encrypt(_nonce(index), block, _chunk_ad(obj, index, last)))
        if last:
            return
        index, block = index + 1, following


def decrypt_stream(key: bytes, obj: str, src: BinaryIO, dst: BinaryIO, where: str) -> None:
    """Decrypt `src` into `dst`; any alteration raises a StoreError naming `where`."""

    def corrupt(detail: str) -> StoreError:
        return StoreError(
            f"{where}: integrity check failed ({detail}): the encrypted blob was altered or is corrupt; "
            "restore it from a backup"
        )

    header = src.read(HEADER)
    if len(header) < HEADER or header[: len(MAGIC)] != MAGIC:
        raise corrupt("bad header")
    if header[len(MAGIC)] != FORMAT_VERSION:
        raise corrupt(f"unknown format version {header[len(MAGIC)]}")
    size = int.from_bytes(header[len(MAGIC) + 1 :], "big") + TAG
    aes = AESGCM(key)
    index, block = 0, src.read(size)
    while True:
        following = src.read(size) if len(block) == size else b""
        last = not following
        try:
            dst.write(aes.decrypt(_nonce(index), block, _chunk_ad(obj, index, last)))
        except InvalidTag:
            raise corrupt(f"chunk {index}") from None
        if last:
            return
        index, block = index + 1, following


def decrypt_bytes(key: bytes, obj: str, data: bytes, where: str) -> bytes:
    out = io.BytesIO()
    decrypt_stream(key, obj, io.BytesIO(data), out, where)
    return out.getvalue()


# --- plaintext scratch space ------------------------------------------------------------------

_scratch: Path | None = None
_scratch_lock = threading.Lock()


def scratch_root(home: Path) -> Path:
    """A private folder (mode 0700) outside the workspace for plaintext an encrypted
    workspace needs on disk (model folders to load, training run folders); it is removed
    when the process exits."""
    global _scratch
    with _scratch_lock:
        if _scratch is None or not _scratch.exists():
            folder = Path(tempfile.mkdtemp(prefix="llmos-plain-")).resolve()
            if folder.is_relative_to(home):
                shutil.rmtree(folder, ignore_errors=True)
                raise StoreError(
                    f"the temporary folder {folder.parent} is inside the encrypted workspace {home}: "
                    "point TMPDIR elsewhere"
                )
            atexit.register(shutil.rmtree, folder, True)
            _scratch = folder
        return _scratch


def rewrap_all(engine: Engine, old: MasterKey, new: MasterKey) -> int:
    """Re-wrap every data key from `old` to `new` in one transaction; return how many."""
    count = 0
    with engine.begin() as conn:
        lock_key_table(conn)
        rows = conn.execute(select(data_keys.c.object, data_keys.c.key_id, data_keys.c.wrapped)).all()
        for row in rows:
            if row.key_id != old.key_id:
                raise StoreError(
                    f"data key of {row.object} is wrapped under key {row.key_id}, not the current "
                    f"master key {old.key_id}: restore the workspace database from a backup"
                )
            key = unwrap(old, row.object, row.wrapped)
            conn.execute(
                data_keys.update()
                .where(data_keys.c.object == row.object)
                .values(key_id=new.key_id, wrapped=wrap(new, row.object, key))
            )
            count += 1
    return count
