"""What the top-level options decide, shared by every verb.

`backend` is where a verb's system calls go: the local workspace (`llmos.Workspace`),
or with `--url URL` (or `LLMOS_URL`) a running server (`llmos.Client`, with `--token`
or `LLMOS_TOKEN`). Both offer the same methods and return the same result models, so a
verb is written once for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmos.sdk.workspace import Workspace

if TYPE_CHECKING:
    from llmos.sdk.client import Client


@dataclass
class CliState:
    home: Path | None = None
    debug: bool = False
    url: str | None = None
    token: str | None = None
    project: str | None = None  # --project / LLMOS_PROJECT (F17)
    _workspace: Workspace | None = field(default=None, repr=False)
    _client: Any = field(default=None, repr=False)

    def reset(self, home: Path | None, debug: bool, url: str | None = None, token: str | None = None) -> None:
        self.home, self.debug, self._workspace, self._client = home, debug, None, None
        self.url, self.token = (url or None), (token or None)

    @property
    def remote(self) -> bool:
        return self.url is not None

    @property
    def workspace(self) -> Workspace:
        """The local workspace: for verbs that only make sense on the workspace's machine
        (`llmos serve`, `llmos kernel start`, `llmos init`)."""
        if self._workspace is None:
            self._workspace = Workspace(self.home, project=self.project)
        return self._workspace

    def local(self, verb: str, why: str) -> Workspace:
        """The local workspace for a verb that runs only where the workspace is; with
        --url, a one-line `UsageError` saying why instead of quietly acting on a local one."""
        if self.remote:
            from llmos.core.errors import UsageError

            raise UsageError(f"`llmos {verb}` runs on the workspace's machine, not with --url: {why}")
        return self.workspace

    @property
    def client(self) -> Client:
        if self._client is None:
            from llmos.sdk.client import Client

            assert self.url is not None
            self._client = Client(self.url, token=self.token, project=self.project)
        return self._client

    @property
    def backend(self) -> Any:
        """`Client` with --url, else the local `Workspace`: same methods, same results."""
        return self.client if self.remote else self.workspace


STATE = CliState()
