"""Content-addressed artifact store: every file is kept once, under its SHA-256.

A dataset version points at one blob (its Parquet copy); a model version at a manifest
`{relative path: sha256}` of its folder. Blobs are written to a temporary file and
renamed into place, so a crash never leaves a partial blob under a valid name.
Materialising a manifest hard-links blobs into a folder (copying across devices).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

from llmos.core.errors import StoreError
from llmos.core.util import sha256_file


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def put_file(self, src: Path) -> str:
        digest = sha256_file(src)
        dest = self.path(digest)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
            os.close(fd)
            try:
                shutil.copyfile(src, tmp)
                os.chmod(tmp, 0o444)
                os.replace(tmp, dest)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return digest

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        dest = self.path(digest)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o444)
            os.replace(tmp, dest)
        return digest

    def put_dir(self, src: Path) -> dict[str, str]:
        """Store every file under `src`; return the manifest {relative path: sha256}."""
        manifest: dict[str, str] = {}
        for file in sorted(p for p in src.rglob("*") if p.is_file()):
            manifest[file.relative_to(src).as_posix()] = self.put_file(file)
        return manifest

    def materialize(self, manifest: dict[str, str], dest: Path) -> Path:
        """Lay the files of `manifest` out under `dest` (idempotent)."""
        for rel, digest in manifest.items():
            blob = self.path(digest)
            if not blob.exists():
                raise StoreError(f"artifact {digest[:12]} ({rel}) is missing from {self.root}")
            target = dest / rel
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(blob, target)
            except FileExistsError:
                continue  # another thread or process laid it out meanwhile
            except OSError:  # no hard links here (another file system): copy, then rename
                partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
                shutil.copyfile(blob, partial)
                os.replace(partial, target)
        return dest

    def files(self) -> list[Path]:
        base = self.root / "sha256"
        return sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []
