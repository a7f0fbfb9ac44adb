"""Progress reporting that long operations call and interfaces render.

Library code reports through a `Progress`; the CLI passes a Rich progress bar, the SDK
a silent one or a user callback, and later the kernel a job-progress writer.
"""

from __future__ import annotations

from typing import Any, Protocol


class Progress(Protocol):
    def start(self, task: str, total: int | None) -> None: ...

    def advance(self, n: int = 1, **fields: Any) -> None: ...

    def log(self, message: str) -> None: ...

    def finish(self) -> None: ...


class SilentProgress:
    """Reports nothing; the default for library and SDK calls."""

    def start(self, task: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1, **fields: Any) -> None:
        pass

    def log(self, message: str) -> None:
        pass

    def finish(self) -> None:
        pass
