"""Who may see the dashboard: anyone on loopback, only holders of credentials elsewhere.

Bound to a loopback address the dashboard needs no credentials (only local
users reach it). Bound to any other address it refuses to start unless the
configuration has basic-auth users (``CALLSTREAM_DASH_USERS``) or a token
(``CALLSTREAM_DASH_TOKEN``). A token is accepted as ``Authorization: Bearer``,
or once as ``?token=`` in a link, which sets an HttpOnly cookie and redirects
to the same page without the token in its address.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from typing import Any
from urllib.parse import urlencode

from callstream.config import Settings
from callstream.errors import UsageError

COOKIE = "callstream_token"
OPEN_PATHS = ("/healthz",)  # answers "ok" and nothing else: the supervisor's readiness check


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_users(text: str | None) -> dict[str, str]:
    """``user:password,user2:password2`` -> {user: password}; a malformed pair is a UsageError."""
    users: dict[str, str] = {}
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        user, sep, password = pair.strip().partition(":")
        if not sep or not user or not password:
            raise UsageError("CALLSTREAM_DASH_USERS: expected user:password pairs separated by commas")
        users[user] = password
    return users


def check_bind(settings: Settings) -> None:
    """Refuse (UsageError) to serve a non-loopback address without credentials."""
    users = parse_users(settings.dash_users)
    if not is_loopback(settings.dash_host) and not users and not settings.dash_token:
        raise UsageError(f"refusing to serve on {settings.dash_host} without credentials: set "
                         "CALLSTREAM_DASH_USERS (user:password,...) or CALLSTREAM_DASH_TOKEN, "
                         "or bind 127.0.0.1")


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def authorized(headers: Any, cookies: Any, users: dict[str, str], token: str | None) -> bool:
    """True when the request carries valid basic-auth credentials, the bearer token or its cookie."""
    scheme, _, value = (headers.get("Authorization") or "").partition(" ")
    if token and scheme.lower() == "bearer" and _equal(value.strip(), token):
        return True
    if token and _equal(cookies.get(COOKIE) or "", token):
        return True
    if users and scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = users.get(user)
        return expected is not None and _equal(password, expected)
    return False


def install(server: Any, settings: Settings) -> None:
    """Guard every route of the Flask ``server`` (when credentials are configured) and add
    headers that keep the pages out of frames and stop content sniffing."""
    from flask import make_response, redirect, request

    users, token = parse_users(settings.dash_users), settings.dash_token

    @server.after_request
    def _headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    if not users and not token:
        return

    @server.before_request
    def _guard() -> Any:
        if request.path in OPEN_PATHS or authorized(request.headers, request.cookies, users, token):
            return None
        offered = request.args.get("token")
        if token and offered is not None and _equal(offered, token):
            rest = {k: v for k, v in request.args.items(multi=True) if k != "token"}
            response = redirect(request.path + ("?" + urlencode(rest) if rest else ""))
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict",
                                secure=request.is_secure)
            return response
        response = make_response("authentication required\n", 401)
        if users:
            response.headers["WWW-Authenticate"] = 'Basic realm="callstream", charset="UTF-8"'
        return response
