"""What a request asks for (`Access`) and the policy interface that decides on it.

The HTTP layer (`llmos.api`) asks a `Policy` before every handler; the security layer
owns the decision. The `Policy` base class here admits everyone and says so loudly:
it is what `open_policy()` and `llmos serve --insecure-no-auth` give. `TokenPolicy`
(`llmos.security.policy`) is what every other app gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmos.store.audit import set_actor

PUBLIC = "public"  # answered to anyone; a policy may still tell who asked
OPEN_WARNING = "authentication is off: anyone who can reach this server may deploy, undeploy and call models"


@dataclass(frozen=True)
class Access:
    """What a request asks for: a permission, and the deployment it calls (if any)."""

    permission: str
    deployment: str | None = None
    generative: bool = False  # a prompt that a guard screens for injection


class Policy:
    """Admits every request (no authentication). `warning` is shown at start-up and in
    /healthz; a real policy sets it to None."""

    warning: str | None = OPEN_WARNING

    async def allow(self, request: Any, access: Access) -> None:
        """Return to admit; raise `Unauthenticated` (401), `Forbidden` (403),
        `RateLimited` (429) or `RequestBlocked` (400) to refuse."""
        set_actor("anonymous")  # audit events of this request: nobody authenticated
        request.state.authenticated = True
        return None

    async def answered(self, state: dict[str, Any], status: int, bytes_out: int) -> None:
        """After each answer (the request's `state`, its status and body bytes): where a
        policy watches its traffic. Nothing here."""
        return None

    def refuse_early(self, address: str, authorization: str | None) -> Any:
        """Before routing, body or database: an exception to answer at once (a `RateLimited`
        for an address or token prefix in a burst of failed authentications), else None."""
        return None
