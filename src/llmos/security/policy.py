"""The HTTP policy of `llmos serve`: bearer tokens, roles and the request guard.

`TokenPolicy.allow` runs before every handler with the permission the route declared
(`llmos.api.access`). It answers 401 (with `WWW-Authenticate: Bearer`) when there is
no usable token: missing, malformed, unknown, expired, revoked, or its user removed; 403
when the token is good but its role lacks the permission, or an app token calls a
deployment not named on it. Public routes (`/healthz`) admit anyone but tell the handler
whether the caller authenticated, so liveness stays open without leaking details.

Failed authentications and refusals are appended to the audit log with the token's
prefix only, never the token; a failed authentication's actor is `token:<prefix>` (or
`anonymous` without a token), the caller as far as it is known. On success the user
becomes the actor of every audit event the request records.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import Request

from llmos.security.access import OPEN_WARNING, PUBLIC, Access, Policy
from llmos.security.guard import Guard
from llmos.security.identities import PREFIX_CHARS, TOKEN_PREFIX, Principal, Rejection, authenticate
from llmos.serve.errors import Forbidden, Unauthenticated
from llmos.store.audit import acting_as, record, set_actor
from llmos.store.db import Store

log = logging.getLogger("llmos.security")

__all__ = ["OPEN_WARNING", "PUBLIC", "Access", "Policy", "TokenPolicy", "build_policy", "open_policy"]


class TokenPolicy(Policy):
    """Bearer tokens checked against the workspace's users and roles."""

    warning = None

    def __init__(self, store: Store, guard: Guard | None = None) -> None:
        self.store = store
        self.guard = guard

    async def allow(self, request: Request, access: Access) -> None:
        request.state.authenticated = False
        header = request.headers.get("authorization")
        public = access.permission == PUBLIC
        if header is None:
            if public:
                return
            await self._refuse(
                request, "no bearer token", "", "send an `Authorization: Bearer llmos_...` header"
            )
        scheme, _, secret = (header or "").partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret.startswith(TOKEN_PREFIX) or " " in secret:
            if public:
                return
            shown = secret[:PREFIX_CHARS] if scheme.lower() == "bearer" else ""
            hint = "the Authorization header must be `Bearer llmos_...`"
            await self._refuse(request, "malformed Authorization header", shown, hint)
        found = await asyncio.to_thread(authenticate, self.store, secret)
        if isinstance(found, Rejection):
            if public:
                return
            await self._refuse(request, found.reason, found.prefix, "ask an admin for a new token")
        assert isinstance(found, Principal)
        set_actor(found.user)
        request.state.principal = found
        if not public:
            await self._authorise(request, found, access)
        request.state.authenticated = True
        if self.guard is not None and not public:
            await self.guard.check(request, found, access)

    async def _authorise(self, request: Request, who: Principal, access: Access) -> None:
        if not who.may(access.permission):
            message = (
                f"a {who.role} token may not do this (route {request.url.path} needs {access.permission})"
            )
            await self._deny(request, who, message)
        if who.role == "app" and access.deployment not in who.deployments:
            called = repr(access.deployment) if access.deployment else "an unnamed deployment"
            message = f"this app token may call {', '.join(who.deployments)} only, not {called}"
            await self._deny(request, who, message)

    async def _refuse(self, request: Request, reason: str, prefix: str, hint: str) -> None:
        detail = {
            "path": request.url.path,
            "method": request.method,
            "reason": reason,
            "token_prefix": prefix,
        }
        # the actor is who knocked, as far as it is known: never the server's own local user
        actor = f"token:{prefix}" if prefix else "anonymous"
        await asyncio.to_thread(_record_as, actor, self.store, "auth.fail", prefix or "-", detail)
        raise Unauthenticated(f"authentication failed, {reason}: {hint}")

    async def _deny(self, request: Request, who: Principal, message: str) -> None:
        detail = {"path": request.url.path, "method": request.method, "token_prefix": who.prefix}
        await asyncio.to_thread(record, self.store, "auth.forbidden", who.user, "denied", detail)
        raise Forbidden(message)


def _record_as(actor: str, store: Store, action: str, target: str, detail: dict[str, Any]) -> None:
    with acting_as(actor):
        record(store, action, target, "denied", detail)


def open_policy() -> Policy:
    """A policy that admits every request: local demos and tests only (it says so in a
    WARNING at start-up and in /healthz)."""
    return Policy()


def build_policy(
    store: Store,
    *,
    insecure: bool = False,
    guard: Any = None,
) -> Policy:
    """The policy of every llmos HTTP app: bearer tokens checked against the workspace's
    users and roles, with an optional request guard (a `GuardConfig` or a `Guard`).
    `insecure=True` is the only way to an open server."""
    if insecure:
        return open_policy()
    if guard is not None and not isinstance(guard, Guard):
        guard = Guard(guard, store)
    return TokenPolicy(store, guard)
