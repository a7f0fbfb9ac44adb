"""`Context`: who calls a system call, on which workspace and project.

The CLI and `llmos.Workspace` act as the local admin of their own workspace
(`local:<os user>`); the HTTP API builds a context per request from the token's
principal, so the same permission table (`llmos.security.identities.PERMISSIONS`)
decides for every entry point. `project` is carried from the start so that per-project
namespaces can be added without changing any signature; today every resource is in
`default`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmos.security.identities import role_allows
from llmos.serve.errors import Forbidden
from llmos.store.audit import acting_as, local_actor, record

if TYPE_CHECKING:
    from llmos.core.settings import Settings
    from llmos.store.db import Store

DEFAULT_PROJECT = "default"


@dataclass(frozen=True)
class Actor:
    """The identity a system call runs as: a user name, its role and, for app tokens,
    the deployments it may call."""

    name: str
    role: str = "admin"
    deployments: tuple[str, ...] = ()
    token_prefix: str = ""

    @classmethod
    def local(cls) -> Actor:
        """The local admin: whoever runs the CLI or the SDK on the workspace's machine."""
        return cls(local_actor(), "admin")

    @classmethod
    def anonymous(cls) -> Actor:
        """Everyone, on a server started with `--insecure-no-auth`."""
        return cls("anonymous", "admin")

    def may(self, permission: str, deployment: str | None = None) -> bool:
        if not role_allows(self.role, permission):
            return False
        return self.role != "app" or deployment in self.deployments


class Context:
    """The workspace store, the acting identity and the project of one system call."""

    def __init__(
        self,
        store: Store,
        actor: Actor | None = None,
        project: str = DEFAULT_PROJECT,
        runtime: Any = None,
    ) -> None:
        self.store = store
        self.actor = actor or Actor.local()
        self.project = project
        # the serving runtime when the call comes through a server (memory figures, eviction)
        self.runtime = runtime
        # models loaded in this process for this context's calls (LLMs for a chat session)
        self.cache: dict[str, Any] = {}

    @property
    def settings(self) -> Settings:
        return self.store.settings

    def require(self, permission: str, deployment: str | None = None) -> None:
        """Raise `Forbidden` (HTTP 403, exit 10), recorded in the audit log, unless the
        actor may do `permission` (on `deployment`, for app tokens)."""
        if self.actor.may(permission, deployment):
            return
        if not role_allows(self.actor.role, permission):
            message = f"a {self.actor.role} may not do this (it needs the {permission!r} permission)"
        else:
            called = repr(deployment) if deployment else "an unnamed deployment"
            message = f"this app token may call {', '.join(self.actor.deployments)} only, not {called}"
        detail = {"permission": permission, "token_prefix": self.actor.token_prefix}
        with acting_as(self.actor.name):
            record(self.store, "auth.forbidden", self.actor.name, "denied", detail)
        raise Forbidden(message)

    @contextmanager
    def acting(self) -> Iterator[None]:
        """Audit events recorded inside are the actor's."""
        with acting_as(self.actor.name):
            yield
