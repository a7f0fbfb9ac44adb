"""Content-addressed artifact store: every file is kept once, under its SHA-256.

A dataset version points at one blob (its Parquet copy); a model version at a manifest
`{relative path: sha256}` of its folder. Blobs are written to a temporary file and
renamed into place, so a crash never leaves a partial blob under a valid name.
Materialising a manifest hard-links blobs into a folder (copying across devices).

With a `Keyring` (an encrypted workspace, see `store.crypto`) a blob holds the
AES-256-GCM ciphertext of the file under its own data key, while its name stays the
SHA-256 of the plaintext (deduplication still works); `read_bytes` decrypts into memory
and `materialize` decrypts each file into the destination, which the caller keeps
outside the workspace.

Where blobs live is chosen by the URL's scheme (MLflow's artifact repositories):
`open_artifacts` maps a plain path or `file://` to this folder store and `s3://bucket/prefix`
to `S3Artifacts` (any S3-compatible service; endpoint from the URL's `?endpoint=` or
`LLMOS_S3_ENDPOINT`, credentials from the usual AWS variables). Both share the content
addressing, deduplication and encryption here; only where the bytes go differs.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from llmos.core.errors import StoreError
from llmos.core.settings import Settings
from llmos.core.util import sha256_file
from llmos.store import crypto


class ArtifactStore:
    """Blobs in a local folder: the embedded default."""

    url_schemes: tuple[str, ...] = ("", "file")
    remote = False

    def __init__(self, root: Path, keyring: crypto.Keyring | None = None) -> None:
        self.root = root
        self.keyring = keyring

    def path(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def _write(self, digest: str, src: BinaryIO) -> None:
        dest = self.path(digest)
        if dest.exists():
            return
        self._write_local(digest, src, dest)

    def _write_local(self, digest: str, src: BinaryIO, dest: Path) -> None:
        """Write the stored form of a blob (ciphertext when encrypted) to `dest`, atomically."""
        key = self.keyring.data_key(blob_object(digest), create=True) if self.keyring else None
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                if key is None:
                    shutil.copyfileobj(src, out)
                else:
                    crypto.encrypt_stream(key, blob_object(digest), src, out)
            os.chmod(tmp, 0o444)
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def put_file(self, src: Path) -> str:
        digest = sha256_file(src)
        with src.open("rb") as f:
            self._write(digest, f)
        return digest

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self._write(digest, io.BytesIO(data))
        return digest

    def put_dir(self, src: Path) -> dict[str, str]:
        """Store every file under `src`; return the manifest {relative path: sha256}."""
        manifest: dict[str, str] = {}
        for file in sorted(p for p in src.rglob("*") if p.is_file()):
            manifest[file.relative_to(src).as_posix()] = self.put_file(file)
        return manifest

    def _blob(self, digest: str, what: str) -> Path:
        blob = self.path(digest)
        if not blob.exists():
            raise StoreError(f"artifact {digest[:12]} ({what}) is missing from {self.root}")
        return blob

    def _decrypt_into(self, digest: str, blob: Path, out: BinaryIO, what: str) -> None:
        with blob.open("rb") as src:
            encrypted = src.read(len(crypto.MAGIC)) == crypto.MAGIC
            src.seek(0)
            if self.keyring is None:
                if encrypted:
                    raise StoreError(
                        f"artifact {digest[:12]} ({what}) is encrypted but the workspace has no master "
                        "key loaded; open it with its key"
                    )
                shutil.copyfileobj(src, out)
                return
            if not encrypted:
                raise StoreError(
                    f"artifact {digest[:12]} ({what}) is not encrypted in an encrypted workspace: "
                    "run `llmos keys enable` to finish encrypting the store"
                )
            key = self.keyring.data_key(blob_object(digest))
            crypto.decrypt_stream(key, blob_object(digest), src, out, f"artifact {digest[:12]} ({what})")

    def read_bytes(self, digest: str, what: str = "blob") -> bytes:
        """The plaintext of a blob, decrypted in memory when the store is encrypted."""
        out = io.BytesIO()
        self._decrypt_into(digest, self._blob(digest, what), out, what)
        return out.getvalue()

    def materialize(self, manifest: dict[str, str], dest: Path) -> Path:
        """Lay the files of `manifest` out under `dest` (idempotent). Encrypted blobs are
        decrypted into a partial file that is renamed into place only once it is verified."""
        for rel, digest in manifest.items():
            blob = self._blob(digest, rel)
            target = dest / rel
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
            if self.keyring is not None:
                try:
                    with partial.open("wb") as out:
                        self._decrypt_into(digest, blob, out, rel)
                    os.replace(partial, target)
                finally:
                    partial.unlink(missing_ok=True)
                continue
            try:
                os.link(blob, target)
            except FileExistsError:
                continue  # another thread or process laid it out meanwhile
            except OSError:  # no hard links here (another file system): copy, then rename
                shutil.copyfile(blob, partial)
                os.replace(partial, target)
        return dest

    def describe(self) -> str:
        return str(self.root)

    def blob_states(self) -> list[tuple[str, bool]]:
        """(digest, encrypted) of every stored blob."""
        return [(p.parent.name + p.name, crypto.is_encrypted_file(p)) for p in self.files()]

    def files(self) -> list[Path]:
        base = self.root / "sha256"
        return (
            sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith(".tmp-"))
            if base.exists()
            else []
        )


def blob_object(digest: str) -> str:
    """The name of a blob's data key in the key table."""
    return f"blob:{digest}"


def open_artifacts(settings: Settings) -> ArtifactStore:
    """The artifact store of `settings.artifacts_url`, chosen by its scheme."""
    url = settings.artifacts_url
    scheme = urlsplit(url).scheme if "://" in url else ""
    if scheme in ArtifactStore.url_schemes:
        return ArtifactStore(Path(urlsplit(url).path) if scheme else Path(url))
    if scheme == "s3":
        from llmos.store.s3 import S3Artifacts

        return S3Artifacts(url, settings.cache_dir / "blobs")
    raise StoreError(
        f"artifact store URL {url!r}: unknown scheme {scheme!r}; use a folder or s3://BUCKET/PREFIX"
    )
