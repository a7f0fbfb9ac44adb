"""`@operation`: the declaration every system call carries, and the table of them.

`operation("data:write")` wraps a function whose first argument is a `Context`: the
permission is checked before the body runs (`Context.require`; `deployment=` names the
argument holding the called deployment, for app tokens, or is a function finding it
from the arguments: a support session's assistant), and audit events recorded
inside are the actor's. `OPERATIONS` maps each operation's name (the function's name,
unique across `ops`) to its `Operation`: the HTTP routes read their permission from it
(`llmos.api.access.op`), and the parity test checks that the CLI, `Workspace`, `Client`
and the routes reach the same set.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Operation:
    name: str
    permission: str
    function: Callable[..., Any]
    deployment_arg: str | Callable[..., str | None] | None = None
    summary: str = ""


OPERATIONS: dict[str, Operation] = {}


def operation(
    permission: str, *, deployment: str | Callable[..., str | None] | None = None
) -> Callable[[F], F]:
    """Declare a system call: `permission` from the role table, `deployment` the name
    of the argument that holds the deployment an app token must be allowed to call, or
    a function `(ctx, arguments) -> name` that finds it (called for app tokens only)."""

    def wrap(fn: F) -> F:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def call(ctx: Any, *args: Any, **kwargs: Any) -> Any:
            called = None
            if callable(deployment):
                if ctx.actor.role == "app":
                    called = deployment(ctx, signature.bind_partial(ctx, *args, **kwargs).arguments)
            elif deployment is not None:
                bound = signature.bind_partial(ctx, *args, **kwargs)
                value = bound.arguments.get(deployment)
                called = value if isinstance(value, str) else None
            ctx.require(permission, called)
            with ctx.acting():
                return fn(ctx, *args, **kwargs)

        if fn.__name__ in OPERATIONS:
            raise RuntimeError(f"operation {fn.__name__} is declared twice")
        summary = (inspect.getdoc(fn) or "").split("\n\n")[0].replace("\n", " ")
        OPERATIONS[fn.__name__] = Operation(fn.__name__, permission, call, deployment, summary)
        call.operation = OPERATIONS[fn.__name__]  # type: ignore[attr-defined]
        return call  # type: ignore[return-value]

    return wrap


def load_all() -> dict[str, Operation]:
    """Import every ops module (and every application's operations) so that `OPERATIONS` is complete."""
    import importlib
    import importlib.util
    import pkgutil

    import llmos.ops as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"llmos.ops.{info.name}")
    # applications (a row below `ops`) declare their operations in `<app>/operations.py`:
    # discovered by name, so that `ops` never imports them
    apps = importlib.util.find_spec("llmos.apps")
    if apps is not None and apps.submodule_search_locations:
        for info in pkgutil.iter_modules(apps.submodule_search_locations):
            if importlib.util.find_spec(f"llmos.apps.{info.name}.operations") is not None:
                importlib.import_module(f"llmos.apps.{info.name}.operations")
    return OPERATIONS
