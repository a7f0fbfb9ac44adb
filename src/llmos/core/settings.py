"""Where a workspace lives and the defaults that apply to it.

A workspace is one folder (`LLMOS_HOME`, default `~/.llmos`, or `--home`): the metadata
database `llmos.db`, the content-addressed artifact store `artifacts/`, training run
folders `runs/` and caches `cache/`. Nothing else is written outside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_HOME = "LLMOS_HOME"
ENV_DB_URL = "LLMOS_DB_URL"


def default_home() -> Path:
    env = os.environ.get(ENV_HOME)
    return Path(env).expanduser() if env else Path.home() / ".llmos"


@dataclass(frozen=True)
class Settings:
    """Paths and URLs of one workspace."""

    home: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> Settings:
        path = Path(home).expanduser() if home is not None else default_home()
        return cls(home=path.resolve())

    @property
    def db_path(self) -> Path:
        return self.home / "llmos.db"

    @property
    def db_url(self) -> str:
        return os.environ.get(ENV_DB_URL) or f"sqlite:///{self.db_path}"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"
