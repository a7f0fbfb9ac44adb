"""`llmos auth` and `llmos audit` as a user runs them: tokens shown once and stored
hashed, bad input answered in one line with a non-zero exit, and the audit trail."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest

from llmos.cli.main import main
from llmos.core.settings import Settings
from llmos.security.identities import Principal, Rejection, authenticate, create_token
from llmos.store.db import Store


@pytest.fixture
def run(home, capsys, monkeypatch):
    monkeypatch.setenv("LLMOS_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")

    def call(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


def _one_line_error(result: tuple[int, str, str], code: int, text: str) -> None:
    rc, _, err = result
    assert rc == code, err
    assert err.count("\n") == 1 and err.startswith("error: ") and text in err, err


@pytest.mark.local_only
def test_init_users_tokens_and_their_audit_trail(run, home):
    rc, out, _ = run("auth", "init", "--json")
    assert rc == 0
    admin = json.loads(out)
    assert admin["token"].startswith("llmos_") and admin["role"] == "admin" and admin["user"] == "admin"
    _one_line_error(run("auth", "init"), 2, "already has an admin")
    assert run("auth", "user", "add", "dev", "--role", "developer")[0] == 0
    rc, out, _ = run("auth", "token", "create", "--user", "dev", "--role", "app", "--deployment", "a0",
                     "--deployment", "a1", "--expires", "30d", "--json")  # fmt: skip
    app = json.loads(out)
    assert rc == 0 and app["deployments"] == ["a0", "a1"] and app["expires_at"] and app["state"] == "active"
    rc, out, _ = run("auth", "token", "create", "--user", "dev")
    plain = out.strip()
    assert rc == 0 and plain.startswith("llmos_") and len(plain) > 40
    listed = json.loads(run("auth", "token", "list", "--json")[1])
    assert [t["role"] for t in listed] == ["admin", "app", "developer"]
    assert all("token" not in t for t in listed)
    # only hashes are stored: no token appears anywhere in the database file
    raw = (home / "llmos.db").read_bytes() + b"".join(p.read_bytes() for p in home.glob("llmos.db-*"))
    for secret in (admin["token"], app["token"], plain):
        assert secret.encode() not in raw
    assert run("auth", "token", "revoke", str(app["id"]))[0] == 0
    assert json.loads(run("auth", "token", "list", "--user", "dev", "--json")[1])[0]["state"] == "revoked"
    users = json.loads(run("auth", "user", "list", "--json")[1])
    assert {u["name"]: u["active_tokens"] for u in users} == {"admin": 1, "dev": 1}
    assert run("auth", "user", "remove", "dev")[0] == 0
    events = json.loads(run("audit", "list", "--json")[1])
    assert [e["action"] for e in events] == [
        "user.add", "token.create", "user.add", "token.create", "token.create", "token.revoke", "user.remove",
    ]  # fmt: skip
    assert all(e["actor"].startswith("local:") for e in events)
    assert json.loads(run("audit", "list", "--since", "1h", "--json")[1]) == events
    assert json.loads(run("audit", "list", "--since", "2999-01-01", "--json")[1]) == []
    rc, out, _ = run("audit", "verify")
    assert rc == 0 and out.strip() == "verified 7 events"


def test_bad_input_is_one_line_and_non_zero(run):
    assert run("auth", "init", "--name", "root")[0] == 0
    _one_line_error(run("auth", "user", "add", "x", "--role", "boss"), 2, "unknown role 'boss'")
    _one_line_error(run("auth", "token", "create", "--user", "ghost"), 3, "user 'ghost' not found")
    _one_line_error(run("auth", "token", "create", "--user", "root", "--role", "chief"), 2, "unknown role")
    _one_line_error(
        run("auth", "token", "create", "--user", "root", "--expires", "soon"), 2, "--expires 'soon'"
    )
    _one_line_error(run("auth", "token", "create", "--user", "root", "--expires", "0d"), 2, "--expires '0d'")
    _one_line_error(run("auth", "token", "create", "--user", "root", "--role", "app"), 2, "--deployment NAME")
    _one_line_error(run("auth", "user", "remove", "root"), 2, "'root' is the last admin")
    _one_line_error(run("auth", "user", "remove", "ghost"), 3, "user 'ghost' not found")
    _one_line_error(run("auth", "token", "revoke", "llmos_nope"), 3, "token 'llmos_nope' not found")
    _one_line_error(run("audit", "list", "--since", "yesterday"), 2, "--since 'yesterday'")
    assert run("auth", "user", "add", "viv", "--role", "viewer")[0] == 0
    _one_line_error(
        run("auth", "token", "create", "--user", "viv", "--role", "developer"),
        2,
        "cannot hold a developer token",
    )


@pytest.mark.local_only
def test_audit_verify_names_the_tampered_entry(run, home):
    run("auth", "init")
    for name in ("a", "b", "c"):
        run("auth", "user", "add", name)
    with sqlite3.connect(home / "llmos.db") as con:
        con.execute("UPDATE audit_events SET target = 'zzz' WHERE id = 3")
    _one_line_error(run("audit", "verify"), 11, "audit entry 3 was edited")
    rc, out, _ = run("audit", "verify", "--json")
    assert rc == 11 and json.loads(out)["problem"] == "edited"


def test_tokens_of_removed_users_expired_and_revoked_tokens_do_not_authenticate(home):
    from llmos.security.identities import add_user, remove_user, revoke_token

    store = Store(Settings.resolve(home))
    add_user(store, "root", "admin")
    add_user(store, "bob", "developer")
    good, info = create_token(store, "bob")
    found = authenticate(store, good)
    assert isinstance(found, Principal) and (found.user, found.role) == ("bob", "developer")
    expired, _ = create_token(store, "bob", expires=timedelta(seconds=-1))
    assert isinstance(authenticate(store, expired), Rejection)
    assert "expired" in authenticate(store, expired).reason  # type: ignore[union-attr]
    revoked, _ = create_token(store, "bob")
    revoke_token(store, str(info["id"] + 2))  # by id
    assert "revoked" in authenticate(store, revoked).reason  # type: ignore[union-attr]
    remove_user(store, "bob")
    assert "removed" in authenticate(store, good).reason  # type: ignore[union-attr]
    assert authenticate(store, "llmos_" + "y" * 43) == Rejection("unknown token", "llmos_yyyyyy")


def test_serve_options_are_checked_and_insecure_mode_is_loud(run):
    import socket

    _one_line_error(run("serve", "--guard", "loud"), 2, "--guard 'loud': use one of block, flag, off")
    _one_line_error(run("serve", "--rate-limit", "0"), 2, "--rate-limit must be above 0")
    with socket.socket() as busy:  # serving stops at the bind, after the policy is chosen
        busy.bind(("127.0.0.1", 0))
        port = str(busy.getsockname()[1])
        rc, _, err = run("serve", "--port", port)
        assert rc == 2 and "no users yet: every request will get 401" in err
        rc, _, err = run("serve", "--port", port, "--insecure-no-auth")
        assert rc == 2 and "WARNING: --insecure-no-auth: authentication is off" in err
