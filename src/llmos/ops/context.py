"""`Context`: who calls a system call, on which workspace and project.

The CLI and `llmos.Workspace` act as the local admin of their own workspace
(`local:<os user>`); the HTTP API builds a context per request from the token's
principal, so the same permission table (`llmos.security.identities.PERMISSIONS`)
decides for every entry point. `project` is carried from the start so that per-project
namespaces can be added without changing any signature; today every resource is in
`default` unless the caller chose another (`--project`, `Workspace(project=...)`, the
`LLMOS-Project` header).

Roles are per project (F17): before the permission check, `require` finds the actor's
role in the context's project (`store.projects.role_in`; admins have every project) and
uses the lower of it and the token's own role; a user without a role there is refused,
and an unknown project is a 404 naming it. Inside the call every store query is limited
to the project (`store.scope`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmos.security.identities import role_allows
from llmos.serve.errors import Forbidden
from llmos.store.audit import acting_as, local_actor, record
from llmos.store.scope import in_project

if TYPE_CHECKING:
    from llmos.core.settings import Settings
    from llmos.store.db import Store

DEFAULT_PROJECT = "default"
RANK = {"viewer": 1, "developer": 2, "admin": 3}


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
        self._role: str | None = None  # the actor's role in `project`, once looked up
        self._granted: frozenset[str] = frozenset()  # see `delegated`

    @property
    def settings(self) -> Settings:
        return self.store.settings

    def require(self, permission: str, deployment: str | None = None) -> None:
        """Raise `Forbidden` (HTTP 403, exit 10), recorded in the audit log, unless the
        actor may do `permission` (on `deployment`, for app tokens)."""
        if permission in self._granted:
            return
        actor = self.project_actor()
        if actor.may(permission, deployment):
            return
        if not role_allows(actor.role, permission):
            if actor.role != self.actor.role:
                message = (
                    f"{self.actor.name} is a {actor.role} in project {self.project!r} and may not do "
                    f"this (it needs the {permission!r} permission)"
                )
            else:
                message = f"a {self.actor.role} may not do this (it needs the {permission!r} permission)"
        else:
            called = repr(deployment) if deployment else "an unnamed deployment"
            message = f"this app token may call {', '.join(self.actor.deployments)} only, not {called}"
        detail = {"permission": permission, "token_prefix": self.actor.token_prefix}
        with acting_as(self.actor.name), in_project(self.project):
            record(self.store, "auth.forbidden", self.actor.name, "denied", detail)
        raise Forbidden(message)

    def project_actor(self) -> Actor:
        """The actor with its role in this context's project: the lower of the token's role
        and the user's role in the project; admins keep theirs. Raises NotFoundError for an
        unknown project and Forbidden for a user without a role in it."""
        from dataclasses import replace

        from llmos.store.projects import get_project, role_in

        if self._role is None:
            if self.project != DEFAULT_PROJECT:
                get_project(self.store, self.project)
            role = self.actor.role
            if role != "admin":
                granted = role_in(self.store, self.actor.name, self.project)
                if granted is None and self.project == DEFAULT_PROJECT:
                    # an identity without a user row (the local actor, one the caller's policy
                    # vouches for) keeps its role in `default`, as before projects
                    granted = role
                if granted is None:
                    detail = {"project": self.project, "token_prefix": self.actor.token_prefix}
                    with acting_as(self.actor.name), in_project(self.project):
                        record(self.store, "auth.forbidden", self.actor.name, "denied", detail)
                    raise Forbidden(f"{self.actor.name} has no role in project {self.project!r}")
                if role != "app" and RANK.get(granted, 0) < RANK.get(role, 0):
                    role = granted
            self._role = role
        return self.actor if self._role == self.actor.role else replace(self.actor, role=self._role)

    def delegated(self, permissions: frozenset[str]) -> Context:
        """This context for the inner calls of an operation the actor was allowed: each of
        `permissions` is granted whatever the actor's role. The support assistant's turn
        reads its own deployments, models and collection and predicts with them, for an
        app token that may call the assistant and nothing else; the code of the outer
        operation decides what is read, never the caller."""
        inner = Context(self.store, self.actor, self.project, self.runtime)
        inner.cache, inner._role = self.cache, self._role
        inner._granted = self._granted | permissions
        return inner

    @contextmanager
    def acting(self) -> Iterator[None]:
        """Audit events recorded inside are the actor's, and store calls are the project's."""
        with acting_as(self.actor.name), in_project(self.project):
            yield
