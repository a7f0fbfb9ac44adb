"""The Python SDK: `llmos.Workspace` offers every operation of the CLI."""

from llmos.sdk.workspace import Workspace

__all__ = ["Workspace"]
