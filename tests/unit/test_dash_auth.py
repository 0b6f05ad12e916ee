"""Loopback serves anyone; any other bind needs credentials; every route is guarded."""

from __future__ import annotations

import base64

import pytest
from flask import Flask

from common.config import Settings
from common.errors import UsageError
from dashboards import auth

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True),
                                            ("[::1]", True), ("localhost", True), ("0.0.0.0", False),
                                            ("192.168.1.5", False), ("::", False), ("dash.example", False)])
def test_is_loopback(host, loopback) -> None:
    assert auth.is_loopback(host) is loopback


def test_parse_users() -> None:
    assert auth.parse_users("ann:s3cret, bob:p:w:d,") == {"ann": "s3cret", "bob": "p:w:d"}
    assert auth.parse_users(None) == {}
    for bad in ("ann", "ann:", ":pw"):
        with pytest.raises(UsageError, match="CALLSTREAM_DASH_USERS"):
            auth.parse_users(bad)


@pytest.fixture(autouse=True)
def _private_store(tmp_path, monkeypatch) -> None:
    """Every test has its own (empty) account store, never the repository's var/."""
    monkeypatch.setenv("CALLSTREAM_ACCOUNTS", str(tmp_path / "accounts.sqlite"))


def _settings(env: dict[str, str]) -> Settings:
    import os

    return Settings.from_env({"CALLSTREAM_ACCOUNTS": os.environ["CALLSTREAM_ACCOUNTS"], **env})


def test_check_bind_refuses_an_open_address_without_credentials() -> None:
    auth.check_bind(_settings({}))
    with pytest.raises(UsageError, match="refusing to serve on 0.0.0.0 without credentials"):
        auth.check_bind(_settings({"CALLSTREAM_DASH_HOST": "0.0.0.0"}))
    auth.check_bind(_settings({"CALLSTREAM_DASH_HOST": "0.0.0.0", "CALLSTREAM_DASH_TOKEN": "t"}))
    auth.check_bind(_settings({"CALLSTREAM_DASH_HOST": "0.0.0.0", "CALLSTREAM_DASH_USERS": "a:b"}))


def _client(**env: str):
    server = Flask("t")
    server.add_url_rule("/", "index", lambda: "secret data")
    server.add_url_rule("/healthz", "healthz", lambda: "ok")
    auth.install(server, _settings({"CALLSTREAM_DASH_HOST": "0.0.0.0", **env}))
    return server.test_client()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_guards_every_route_but_health() -> None:
    client = _client(CALLSTREAM_DASH_USERS="ann:s3cret")
    denied = client.get("/")
    assert denied.status_code == 401 and "secret" not in denied.get_data(as_text=True)
    assert denied.headers["WWW-Authenticate"].startswith("Basic")
    assert client.get("/", headers=_basic("ann", "wrong")).status_code == 401
    assert client.get("/", headers=_basic("bob", "s3cret")).status_code == 401
    assert client.get("/", headers={"Authorization": "Basic !!notbase64"}).status_code == 401
    ok = client.get("/", headers=_basic("ann", "s3cret"))
    assert ok.status_code == 200 and ok.headers["X-Frame-Options"] == "DENY"
    assert ok.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/healthz").get_data(as_text=True) == "ok"


def test_token_as_bearer_or_once_in_a_link_then_cookie() -> None:
    client = _client(CALLSTREAM_DASH_TOKEN="tok-123")
    assert client.get("/").status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer tok-123"}).status_code == 200
    assert client.get("/?token=nope").status_code == 401
    first = client.get("/?token=tok-123&x=1")
    assert first.status_code == 302 and first.headers["Location"].endswith("/?x=1")  # token gone from the address
    cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/").status_code == 200  # the cookie now carries it


def test_loopback_without_credentials_is_open_but_still_sends_headers() -> None:
    server = Flask("t")
    server.add_url_rule("/", "index", lambda: "data")
    auth.install(server, _settings({}))
    response = server.test_client().get("/")
    assert response.status_code == 200 and response.headers["Referrer-Policy"] == "no-referrer"
