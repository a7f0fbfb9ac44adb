"""Where a workspace lives and the defaults that apply to it.

A workspace is one folder (`LLMOS_HOME`, default `~/.llmos`, or `--home`): the metadata
database `llmos.db`, the content-addressed artifact store `artifacts/`, training run
folders `runs/` and caches `cache/`. Nothing else is written outside it.

Scaled out, the metadata database and the artifacts live elsewhere, named by URL: the
environment (`LLMOS_DB_URL`, `LLMOS_ARTIFACTS_URL`) wins, else the workspace's
`store.json` (written by `llmos init --db URL --artifacts URL`, mode 0600 as it may hold
a password), else the embedded defaults. The folder then keeps only what is local to a
host: caches (the read cache of remote artifacts), run folders and job logs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_HOME = "LLMOS_HOME"
ENV_DB_URL = "LLMOS_DB_URL"
ENV_ARTIFACTS_URL = "LLMOS_ARTIFACTS_URL"
ENV_S3_ENDPOINT = "LLMOS_S3_ENDPOINT"
STORE_FILE = "store.json"


def default_home() -> Path:
    env = os.environ.get(ENV_HOME)
    return Path(env).expanduser() if env else Path.home() / ".llmos"


def sqlalchemy_url(url: str) -> str:
    """A database URL as SQLAlchemy wants it: `postgresql://` (and `postgres://`) go through
    psycopg 3, the driver llmos pins."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


@dataclass(frozen=True)
class Settings:
    """Paths and URLs of one workspace."""

    home: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> Settings:
        path = Path(home).expanduser() if home is not None else default_home()
        return cls(home=path.resolve())

    @property
    def store_file(self) -> Path:
        return self.home / STORE_FILE

    def store_config(self) -> dict[str, Any]:
        """The workspace's recorded `db_url` and `artifacts_url` (empty when it has none)."""
        try:
            value = json.loads(self.store_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def write_store_config(self, db_url: str | None = None, artifacts_url: str | None = None) -> None:
        """Record where this workspace's database and artifacts live (mode 0600)."""
        config = {**self.store_config()}
        if db_url:
            config["db_url"] = db_url
        if artifacts_url:
            config["artifacts_url"] = artifacts_url
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.store_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(config, f, indent=2)
            f.write("\n")

    @property
    def db_path(self) -> Path:
        return self.home / "llmos.db"

    @property
    def db_url(self) -> str:
        url = os.environ.get(ENV_DB_URL) or self.store_config().get("db_url") or f"sqlite:///{self.db_path}"
        return sqlalchemy_url(str(url))

    @property
    def artifacts_url(self) -> str:
        """`s3://bucket/prefix` (or another scheme `store.artifacts` knows), else the folder."""
        url = os.environ.get(ENV_ARTIFACTS_URL) or self.store_config().get("artifacts_url")
        return str(url) if url else str(self.artifacts_dir)

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"
