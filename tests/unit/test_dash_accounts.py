"""Accounts: the store (hashes only), roles, sessions, Basic, throttling, the loopback rule."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask, g

from common.config import Settings
from dashboards import auth
from dashboards.accounts import AccountError, Store, verify_password

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"CALLSTREAM_ACCOUNTS": str(tmp_path / "accounts.sqlite"), **env})


def _app(settings: Settings):
    server = Flask("t")
    server.add_url_rule("/", "index", lambda: f"page of {g.callstream_user.name}")
    server.add_url_rule("/download/calls.csv", "csv", lambda: "csv")
    server.add_url_rule("/healthz", "healthz", lambda: "ok")
    return server, auth.install(server, settings)


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_the_store_keeps_no_clear_password_and_checks_roles(tmp_path):
    store = Store(tmp_path / "accounts.sqlite")
    store.add("ann", "portal_admin", ("p2", "p1"), "correct horse", listen=True)
    raw = (tmp_path / "accounts.sqlite").read_bytes()
    assert b"correct horse" not in raw and b"scrypt$" in raw
    assert (tmp_path / "accounts.sqlite").stat().st_mode & 0o777 == 0o600
    user = store.authenticate("ann", "correct horse")
    assert user is not None and user.portals == ("p1", "p2") and user.scope == ("p1", "p2") and user.can_listen
    assert store.authenticate("ann", "wrong horse!") is None and store.authenticate("bob", "correct horse") is None
    for bad in (lambda: store.add("ann", "portal_admin", ("p1",), "another one"),  # taken
                lambda: store.add("op", "operator", ("p1",), "long enough"),  # operators see all
                lambda: store.add("v", "viewer", (), "long enough"),  # a viewer needs portals
                lambda: store.add("v", "viewer", ("p1",), "long enough", listen=True),
                lambda: store.add("x", "root", ("p1",), "long enough"),
                lambda: store.add("bad name", "viewer", ("p1",), "long enough"),
                lambda: store.add("short", "viewer", ("p1",), "2short")):
        with pytest.raises(AccountError):
            bad()
    assert not verify_password("x", "not a hash")


def test_users_cli_reads_the_password_from_stdin_and_never_prints_it(tmp_path):
    env = {"CALLSTREAM_ACCOUNTS": str(tmp_path / "a.sqlite"), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    cli = [sys.executable, "-m", "callstream.cli", "users"]
    added = subprocess.run(cli + ["add", "ann", "--role", "viewer", "--portal", "p1", "--password-stdin"],
                           input="s3cret-pass\n", capture_output=True, text=True, env=env)
    assert added.returncode == 0, added.stderr
    listed = subprocess.run(cli + ["list"], capture_output=True, text=True, env=env)
    assert listed.stdout.split("\t")[:3] == ["ann", "viewer", "p1"]
    assert "s3cret" not in added.stdout + added.stderr + listed.stdout + listed.stderr
    refused = subprocess.run(cli + ["add", "op", "--role", "operator", "--portal", "p1", "--password-stdin"],
                             input="s3cret-pass\n", capture_output=True, text=True, env=env)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "operator" in refused.stderr
    assert Store(tmp_path / "a.sqlite").authenticate("ann", "s3cret-pass") is not None


def test_once_an_account_exists_loopback_needs_a_login_too(tmp_path):
    settings = _settings(tmp_path)
    server, _ = _app(settings)
    client = server.test_client()
    assert client.get("/").get_data(as_text=True) == "page of local"  # no account: the open demo
    Store(settings.accounts_path).add("ann", "portal_admin", ("p1",), "correct horse")
    page = client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 302 and page.headers["Location"].startswith("/login?next=")
    csv = client.get("/download/calls.csv")
    assert csv.status_code == 401 and csv.headers["WWW-Authenticate"].startswith("Basic")
    assert client.get("/healthz").status_code == 200
    assert client.get("/download/calls.csv", headers=_basic("ann", "correct horse")).status_code == 200


def test_login_sets_a_signed_session_that_a_new_password_ends(tmp_path):
    settings = _settings(tmp_path)
    store = Store(settings.accounts_path)
    store.add("ann", "portal_admin", ("p1",), "correct horse")
    server, _ = _app(settings)
    client = server.test_client()
    wrong = client.post("/login", data={"name": "ann", "password": "nope nope", "next": "/"})
    assert wrong.status_code == 401 and "callstream_session" not in wrong.headers.get("Set-Cookie", "")
    ok = client.post("/login", data={"name": "ann", "password": "correct horse", "next": "//evil.example/"})
    assert ok.status_code == 302 and ok.headers["Location"] == "/"  # never off this site
    cookie = ok.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "correct horse" not in cookie
    assert client.get("/").get_data(as_text=True) == "page of ann"
    client.set_cookie("callstream_session", client.get_cookie("callstream_session").value[:-2] + "xx")
    assert client.get("/").status_code == 401  # a forged signature
    client.post("/login", data={"name": "ann", "password": "correct horse", "next": "/"})
    store.set_password("ann", "another horse")
    assert client.get("/").status_code == 401  # the old session ended with the old password
    client.get("/logout")
    assert client.get_cookie("callstream_session") is None


def test_sessions_expire(tmp_path, monkeypatch):
    settings = _settings(tmp_path, CALLSTREAM_DASH_SESSION_S="60")
    Store(settings.accounts_path).add("ann", "viewer", ("p1",), "correct horse")
    server, _ = _app(settings)
    client = server.test_client()
    client.post("/login", data={"name": "ann", "password": "correct horse", "next": "/"})
    assert client.get("/").status_code == 200
    import itsdangerous.timed as timed

    real = timed.time.time
    monkeypatch.setattr(timed.time, "time", lambda: real() + 120)
    assert client.get("/").status_code == 401


def test_failed_logins_are_throttled_per_name_and_address(tmp_path):
    settings = _settings(tmp_path, CALLSTREAM_DASH_LOGIN_ATTEMPTS="3")
    Store(settings.accounts_path).add("ann", "viewer", ("p1",), "correct horse")
    server, _ = _app(settings)
    client = server.test_client()
    for _ in range(3):
        assert client.post("/login", data={"name": "ann", "password": "guess guess"}).status_code == 401
    blocked = client.post("/login", data={"name": "ann", "password": "correct horse"})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert client.get("/", headers=_basic("ann", "correct horse")).status_code == 429


def test_legacy_users_and_token_are_operators(tmp_path):
    settings = _settings(tmp_path, CALLSTREAM_DASH_USERS="boss:old-pass", CALLSTREAM_DASH_TOKEN="tok-1")
    server, auth_ = _app(settings)
    client = server.test_client()
    assert client.get("/", headers=_basic("boss", "old-pass")).get_data(as_text=True) == "page of boss"
    assert auth_.user_named("boss").scope is None and auth_.user_named("boss").can_audit
    client.post("/login", data={"name": "boss", "password": "old-pass", "next": "/"})
    assert client.get("/").get_data(as_text=True) == "page of boss"
    assert server.test_client().get("/", headers={"Authorization": "Bearer tok-1"}).status_code == 200
