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
from llmos.security.watch import (
    FailureLimiter,
    TrafficAnomalies,
    TrafficWatch,
    raise_anomaly_alert,
    raise_traffic_alert,
)
from llmos.serve.errors import Forbidden, RateLimited, Unauthenticated
from llmos.store.audit import acting_as, record, set_actor
from llmos.store.db import Store

log = logging.getLogger("llmos.security")
WATCHED = ("data:read", "models:read")  # reads of named datasets and models, counted per token

__all__ = ["OPEN_WARNING", "PUBLIC", "Access", "Policy", "TokenPolicy", "build_policy", "open_policy"]


class TokenPolicy(Policy):
    """Bearer tokens checked against the workspace's users and roles."""

    warning = None

    def __init__(
        self,
        store: Store,
        guard: Guard | None = None,
        failures: FailureLimiter | None = None,
        watch: TrafficWatch | None = None,
        anomalies: TrafficAnomalies | None = None,
        alert_webhook: str | None = None,
    ) -> None:
        self.store = store
        self.guard = guard
        self.failures = failures or FailureLimiter()
        self.watch = watch or TrafficWatch()
        self.anomalies = anomalies or TrafficAnomalies()
        self.alert_webhook = alert_webhook  # traffic alerts are POSTed here too

    async def allow(self, request: Request, access: Access) -> None:
        request.state.authenticated = False
        header = request.headers.get("authorization")
        public = access.permission == PUBLIC
        if not public:
            self._check_flood(request, header)
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
        checking = self.failures.checking(*self._keys(request, header))
        try:
            found = await asyncio.to_thread(authenticate, self.store, secret)
        finally:
            self.failures.checked(checking)
        if isinstance(found, Rejection):
            if public:
                return
            await self._refuse(request, found.reason, found.prefix, "ask an admin for a new token")
        assert isinstance(found, Principal)
        self.failures.succeeded(f"prefix:{found.prefix}")
        set_actor(found.user)
        request.state.principal = found
        if not public:
            await self._authorise(request, found, access)
        request.state.authenticated = True
        if self.guard is not None and not public:
            await self.guard.check(request, found, access)
        if access.permission in WATCHED and request.path_params:
            await self._watch(request, found, access)

    async def answered(self, state: dict[str, Any], status: int, bytes_out: int) -> None:
        """Count an authenticated request's answer against its token and its project; an
        anomaly that starts an episode raises one alert (`TrafficAnomalies`)."""
        who = state.get("principal")
        if not isinstance(who, Principal):
            return  # failed authentications are the failure limiter's
        context = state.get("context")
        project = getattr(context, "project", None) or "default"
        keys = (f"token:{who.prefix}", f"project:{project}")
        for anomaly in self.anomalies.observe(keys, status, bytes_out):
            await asyncio.to_thread(
                raise_anomaly_alert, self.store, project, anomaly, who.user, self.alert_webhook
            )

    def _keys(self, request: Request, header: str | None) -> tuple[str, str]:
        return flood_keys(request.client.host if request.client else "", header)

    def refuse_early(self, address: str, authorization: str | None) -> RateLimited | None:
        """The limiter's verdict from the connection's address and the Authorization
        header alone: the HTTP layer asks before routing, so a flood's requests cost no
        routing, body parsing or database read (`benchmarks/bench_flood.py`)."""
        keys = flood_keys(address, authorization)
        wait = self.failures.blocked(*keys)
        if wait is None:
            return None
        refusal = RateLimited(
            f"too many failed authentications from this address or token prefix "
            f"({self.failures.limit} a minute): retry in {wait:.0f} s",
            wait,
        )
        refusal.persistent = self.failures.persistent(*keys)  # type: ignore[attr-defined]
        return refusal

    def _check_flood(self, request: Request, header: str | None) -> None:
        """A source address or token prefix in a burst of failures: 429 before any token check."""
        refusal = self.refuse_early(request.client.host if request.client else "", header)
        if refusal is not None:
            raise refusal

    async def _watch(self, request: Request, who: Principal, access: Access) -> None:
        project = request.headers.get("llmos-project") or "default"
        resource = f"{access.permission}:{project}:{next(iter(request.path_params.values()))}"
        distinct = self.watch.observe(f"{who.token_id}:{who.prefix}", resource)
        if distinct is not None:
            limit = self.watch.reads_per_minute
            await asyncio.to_thread(
                raise_traffic_alert, self.store, project, who, distinct, limit, self.alert_webhook
            )

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
        detail: dict[str, Any] = {
            "path": request.url.path,
            "method": request.method,
            "reason": reason,
            "token_prefix": prefix,
        }
        # the actor is who knocked, as far as it is known: never the server's own local user
        actor = f"token:{prefix}" if prefix else "anonymous"
        address, by_prefix = self._keys(request, request.headers.get("authorization"))
        burst = self.failures.failed(address, by_prefix)
        if burst is not None:  # one event for the whole burst; its requests are refused unchecked
            detail = {**detail, "burst_of": burst, "limit_per_minute": self.failures.limit}
            await asyncio.to_thread(_record_as, actor, self.store, "auth.flood", burst, detail)
        else:
            await asyncio.to_thread(_record_as, actor, self.store, "auth.fail", prefix or "-", detail)
        raise Unauthenticated(f"authentication failed, {reason}: {hint}")

    async def _deny(self, request: Request, who: Principal, message: str) -> None:
        detail = {"path": request.url.path, "method": request.method, "token_prefix": who.prefix}
        await asyncio.to_thread(record, self.store, "auth.forbidden", who.user, "denied", detail)
        raise Forbidden(message)


def flood_keys(address: str, header: str | None) -> tuple[str, str]:
    """The failure limiter's keys of a request: its source address, its token's prefix."""
    secret = (header or "").partition(" ")[2].strip()
    prefix = secret[:PREFIX_CHARS] if secret.startswith(TOKEN_PREFIX) else ""
    return f"address:{address}" if address else "", f"prefix:{prefix}" if prefix else ""


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
    alert_webhook: str | None = None,
) -> Policy:
    """The policy of every llmos HTTP app: bearer tokens checked against the workspace's
    users and roles, with an optional request guard (a `GuardConfig` or a `Guard`).
    `insecure=True` is the only way to an open server."""
    if insecure:
        return open_policy()
    if guard is not None and not isinstance(guard, Guard):
        guard = Guard(guard, store)
    return TokenPolicy(store, guard, alert_webhook=alert_webhook)
