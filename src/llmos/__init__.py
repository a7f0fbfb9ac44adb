"""llmos: an operating layer for LLM-centred AI applications.

`import llmos` stays cheap: the SDK's `Workspace` is loaded on first use, and torch,
transformers and friends only inside the functions that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from llmos.sdk.client import Client
    from llmos.sdk.workspace import Workspace

__all__ = ["Client", "LlmosError", "Workspace", "__version__"]

from llmos.core.errors import LlmosError


def __getattr__(name: str) -> Any:
    if name == "Workspace":
        from llmos.sdk.workspace import Workspace

        return Workspace
    if name == "Client":
        from llmos.sdk.client import Client

        return Client
    raise AttributeError(f"module 'llmos' has no attribute {name!r}")
