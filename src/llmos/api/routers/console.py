"""`/console/`: the web console's files and its session probe (`llmos.console`)."""

from __future__ import annotations

from llmos.console import router

__all__ = ["router"]
