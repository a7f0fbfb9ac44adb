"""Small helpers shared by every package: hashing, time, references, atomic writes."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llmos.core.errors import UsageError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def iso(moment: datetime | None) -> str | None:
    """The one timestamp format of every output (`--json`, HTTP): ISO 8601 to the second
    with the time zone. The store keeps naive UTC, read as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat(timespec="seconds")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_name(name: str, what: str = "name") -> str:
    """Names of datasets and models: letters, digits, '.', '_' and '-', at most 128."""
    if not _NAME_RE.match(name):
        raise UsageError(
            f"invalid {what} {name!r}: use letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit, at most 128 characters)"
        )
    return name


def parse_ref(ref: str, what: str = "reference") -> tuple[str, int | None]:
    """Split `NAME[@V]` into (name, version or None for the latest)."""
    name, sep, version = ref.partition("@")
    check_name(name, what)
    if not sep or version in ("", "latest"):
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise UsageError(f"invalid {what} {ref!r}: the version after '@' must be a number >= 1")
    return name, int(version)


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; move it into place only on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, default=str)
