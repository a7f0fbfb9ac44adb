"""What the top-level options decide, shared by every verb."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llmos.sdk.workspace import Workspace


@dataclass
class CliState:
    home: Path | None = None
    debug: bool = False
    _workspace: Workspace | None = field(default=None, repr=False)

    def reset(self, home: Path | None, debug: bool) -> None:
        self.home, self.debug, self._workspace = home, debug, None

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            self._workspace = Workspace(self.home)
        return self._workspace


STATE = CliState()
