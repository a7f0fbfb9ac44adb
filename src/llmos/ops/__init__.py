"""System calls: one typed function per use case, under every entry point.

The CLI, the SDK (`llmos.Workspace`, `llmos.Client`), the HTTP API and the applications
all call these functions, so validation, permission checks, audit events and errors do
not depend on the entry point. Each function takes a `Context` (the workspace's store,
the acting identity, the project) first and returns pydantic result models, the same
classes the HTTP routes declare as `response_model` and the CLI prints with `--json`.

Every function is declared with `@operation(permission)`: the decorator checks the
permission once, makes the actor the author of the audit events the call records, and
enters the function in `OPERATIONS`, which the parity test holds against the CLI, the
SDK, the client and the routes.
"""

from llmos.ops.context import Actor, Context
from llmos.ops.registry import OPERATIONS, operation

__all__ = ["OPERATIONS", "Actor", "Context", "operation"]
