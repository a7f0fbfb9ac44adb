"""Users, roles and service tokens of a workspace.

Roles: `admin` (everything, including users and tokens), `developer` (data, training,
deployments, predictions), `viewer` (read only), `app` (predictions on the deployments
named on its token only). A token carries one role, at most its user's.

Tokens are `llmos_` + 32 random bytes (`secrets.token_urlsafe`), shown once and stored
as their SHA-256. A plain fast hash is right here, unlike for passwords: a token has 256
bits of entropy, so no dictionary or brute-force search can invert its hash, and a slow
KDF (bcrypt, scrypt) would only add milliseconds to every request. The first 12
characters (`prefix`) are kept in clear to tell tokens apart in lists and logs.

Every change is recorded in the audit log.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from llmos.core.errors import NotFoundError, UsageError
from llmos.core.util import check_name, iso, utcnow
from llmos.store.audit import record
from llmos.store.db import Store
from llmos.store.schema import ApiToken, User

TOKEN_PREFIX = "llmos_"
PREFIX_CHARS = 12
ROLES = ("admin", "developer", "viewer", "app")
# What each role may do. Reads are `<resource>:read`; a viewer has every read but the
# audit log and the user list. `train` submits training, evaluation, batch prediction
# and adapt jobs; `predict` calls a deployment (and gives feedback on its answers).
READS = frozenset(
    {"data:read", "models:read", "jobs:read", "deployments:read", "metrics:read", "feedback:read"}
) | {"projects:read"}  # F17: list and show the projects one has a role in
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"*"}),
    "developer": READS
    | {"data:write", "train", "jobs:write", "models:write", "deployments:write", "predict", "adapt"},
    "viewer": READS,
    "app": frozenset({"predict"}),
}
# which token roles a user of each role may hand out
GRANTABLE = {
    "admin": set(ROLES),
    "developer": {"developer", "viewer", "app"},
    "viewer": {"viewer"},
    "app": {"app"},
}
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def role_allows(role: str, permission: str) -> bool:
    granted = PERMISSIONS.get(role, frozenset())
    return "*" in granted or permission in granted


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_duration(text: str, option: str = "--expires") -> timedelta:
    """`30d`, `12h`, `90m`, `2w`, `45s`."""
    match = _DURATION.match(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise UsageError(f"{option} {text!r}: give a positive number and a unit, such as 30d, 12h or 90m")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


@dataclass(frozen=True)
class Principal:
    """Who a request is from: a token's user and role."""

    user: str
    role: str
    token_id: int | None
    prefix: str
    deployments: tuple[str, ...] = ()

    def may(self, permission: str) -> bool:
        return role_allows(self.role, permission)


def user_info(user: User, tokens: int = 0) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role,
        "created_at": iso(user.created_at),
        "active_tokens": tokens,
        "suspended": user.suspended_at is not None,
    }


def token_info(token: ApiToken, user: str) -> dict[str, Any]:
    now = utcnow()
    state = "active"
    if token.revoked_at is not None:
        state = "revoked"
    elif token.suspended_at is not None:
        state = "suspended"
    elif token.expires_at is not None and token.expires_at <= now:
        state = "expired"

    return {
        "id": token.id,
        "prefix": token.prefix,
        "user": user,
        "role": token.role,
        "deployments": list(token.deployments or []),
        "state": state,
        "created_at": iso(token.created_at),
        "expires_at": iso(token.expires_at),
        "revoked_at": iso(token.revoked_at),
        "last_used_at": iso(token.last_used_at),
    }


def _active_user(session: Any, name: str) -> User:
    user = session.scalars(select(User).where(User.name == name, User.removed_at.is_(None))).first()
    if user is None:
        known = ", ".join(session.scalars(select(User.name).where(User.removed_at.is_(None)))) or "none yet"
        raise NotFoundError(f"user {name!r} not found (users: {known}); add it with `llmos auth user add`")
    return user


def _admins(session: Any) -> int:
    query = select(func.count()).select_from(User).where(User.role == "admin", User.removed_at.is_(None))
    return int(session.scalar(query) or 0)


def has_admin(store: Store) -> bool:
    with store.read() as session:
        return _admins(session) > 0


def add_user(store: Store, name: str, role: str) -> User:
    """Add a user (a removed name can be added again; its old tokens stay revoked)."""
    check_name(name, "user name")
    _check_role(role)
    with store.transaction() as session:
        user = session.scalars(select(User).where(User.name == name)).first()
        if user is not None and user.removed_at is None:
            raise UsageError(f"user {name!r} already exists (role {user.role})")
        if user is None:
            user = User(name=name, role=role)
            session.add(user)
        else:
            user.role, user.removed_at, user.created_at = role, None, utcnow()
        session.flush()
    record(store, "user.add", name, detail={"role": role})
    return user


def remove_user(store: Store, name: str) -> User:
    """Remove a user and revoke its tokens; the last admin cannot be removed."""
    now = utcnow()
    with store.transaction() as session:
        user = _active_user(session, name)
        if user.role == "admin" and _admins(session) == 1:
            raise UsageError(f"user {name!r} is the last admin: add another admin before removing it")
        user.removed_at = now
        tokens = session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        ).all()
        for token in tokens:
            token.revoked_at = now
    record(store, "user.remove", name, detail={"revoked_tokens": len(tokens)})
    return user


def list_users(store: Store) -> list[dict[str, Any]]:
    now = utcnow()
    with store.read() as session:
        users = session.scalars(select(User).where(User.removed_at.is_(None)).order_by(User.name)).all()
        rows = []
        for user in users:
            count = session.scalar(
                select(func.count())
                .select_from(ApiToken)
                .where(
                    ApiToken.user_id == user.id,
                    ApiToken.revoked_at.is_(None),
                    (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now),
                )
            )
            rows.append(user_info(user, int(count or 0)))
        return rows


def create_token(
    store: Store,
    user: str,
    role: str | None = None,
    expires: str | timedelta | None = None,
    deployments: list[str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """A new token for `user` (role defaults to the user's): returns (the token, shown
    only now, and its public info)."""
    if role is not None:
        _check_role(role)
    ttl = parse_duration(expires) if isinstance(expires, str) else expires
    names = list(dict.fromkeys(deployments or []))
    for name in names:
        check_name(name, "--deployment")
    with store.transaction() as session:
        owner = _active_user(session, user)
        role = role or owner.role
        if role not in GRANTABLE[owner.role]:
            article = "an" if role[0] in "aeiou" else "a"
            raise UsageError(
                f"user {user!r} has role {owner.role}, which cannot hold {article} {role} token "
                f"(allowed: {', '.join(sorted(GRANTABLE[owner.role]))})"
            )
        if role == "app" and not names:
            raise UsageError("an app token needs the deployments it may call: add --deployment NAME")
        if role != "app" and names:
            raise UsageError(f"--deployment applies to app tokens only, not to a {role} token")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiToken(
            user_id=owner.id,
            role=role,
            prefix=secret[:PREFIX_CHARS],
            token_hash=hash_token(secret),
            deployments=names,
            expires_at=utcnow() + ttl if ttl else None,
        )
        session.add(row)
        session.flush()
        info = token_info(row, owner.name)
    record(store, "token.create", f"{user}/{info['prefix']}", detail={"role": role, "deployments": names})
    return secret, info


def _find_token(session: Any, ident: str) -> ApiToken:
    """A token by id, by prefix, or by the token itself."""
    query = select(ApiToken)
    if ident.isdigit():
        rows = session.scalars(query.where(ApiToken.id == int(ident))).all()
    elif len(ident) > PREFIX_CHARS:
        rows = session.scalars(query.where(ApiToken.token_hash == hash_token(ident))).all()
    else:
        rows = session.scalars(query.where(ApiToken.prefix == ident)).all()
    if len(rows) != 1:
        problem = "matches several tokens; use its id" if rows else "not found"
        raise NotFoundError(f"token {ident!r} {problem} (see `llmos auth token list`)")
    return rows[0]


def revoke_token(store: Store, ident: str) -> dict[str, Any]:
    with store.transaction() as session:
        token = _find_token(session, ident)
        if token.revoked_at is None:
            token.revoked_at = utcnow()
        owner = session.get(User, token.user_id)
        info = token_info(token, owner.name if owner else "?")
    record(store, "token.revoke", f"{info['user']}/{info['prefix']}")
    return info


def suspend_token(store: Store, ident: str, resume: bool = False) -> dict[str, Any]:
    """Refuse a token from the next request until it is resumed (unlike revoking)."""
    with store.transaction() as session:
        token = _find_token(session, ident)
        token.suspended_at = None if resume else (token.suspended_at or utcnow())
        owner = session.get(User, token.user_id)
        info = token_info(token, owner.name if owner else "?")
    record(store, "token.resume" if resume else "token.suspend", f"{info['user']}/{info['prefix']}")
    return info


def suspend_user(store: Store, name: str, resume: bool = False) -> User:
    """Refuse every token of a user until it is resumed; the last admin cannot be suspended."""
    with store.transaction() as session:
        user = _active_user(session, name)
        if not resume and user.role == "admin" and _admins(session) == 1:
            raise UsageError(f"user {name!r} is the last admin: add another admin before suspending it")
        user.suspended_at = None if resume else (user.suspended_at or utcnow())
    record(store, "user.resume" if resume else "user.suspend", name)
    return user


def list_tokens(store: Store, user: str | None = None) -> list[dict[str, Any]]:
    with store.read() as session:
        query = select(ApiToken, User.name).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
        if user is not None:
            _active_user(session, user)
            query = query.where(User.name == user)
        return [token_info(token, name) for token, name in session.execute(query).all()]


@dataclass(frozen=True)
class Rejection:
    """Why a presented token does not authenticate (always a 401)."""

    reason: str
    prefix: str


def authenticate(store: Store, secret: str, touch_after_s: float = 60.0) -> Principal | Rejection:
    """The principal a token speaks for, or why it does not. `last_used_at` is written at
    most once a minute per token, so a busy server does not write on every request."""
    prefix = secret[:PREFIX_CHARS]
    now = utcnow()
    with store.read() as session:
        found = session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == hash_token(secret))
        ).first()
    if found is None:
        return Rejection("unknown token", prefix)
    token, user = found
    if user.removed_at is not None:
        return Rejection(f"the user {user.name!r} of this token was removed", prefix)
    if token.revoked_at is not None:
        return Rejection("this token was revoked", prefix)
    if user.suspended_at is not None:
        return Rejection(f"the user {user.name!r} of this token is suspended", prefix)
    if token.suspended_at is not None:
        return Rejection("this token is suspended", prefix)
    if token.expires_at is not None and token.expires_at <= now:
        return Rejection(
            f"this token expired at {token.expires_at.isoformat(timespec='seconds')} UTC", prefix
        )
    last = token.last_used_at
    if last is None or (now - last).total_seconds() >= touch_after_s:
        with store.transaction() as session:
            row = session.get(ApiToken, token.id)
            if row is not None:
                row.last_used_at = now
    return Principal(user.name, token.role, token.id, token.prefix, tuple(token.deployments or ()))


def init_admin(store: Store, name: str = "admin") -> tuple[str, dict[str, Any]]:
    """The first admin and its token (shown once); refused when an admin exists."""
    with store.read() as session:
        admins = session.scalars(
            select(User.name).where(User.role == "admin", User.removed_at.is_(None))
        ).all()
    if admins:
        raise UsageError(
            f"this workspace already has an admin ({', '.join(admins)}): "
            "ask them for a token (`llmos auth token create`)"
        )
    add_user(store, name, "admin")
    return create_token(store, name, "admin")
