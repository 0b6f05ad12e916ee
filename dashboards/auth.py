"""Who may see the dashboard, as whom: accounts, sessions, HTTP Basic, the legacy token.

- No account anywhere (no user in the store, no ``CALLSTREAM_DASH_USERS``, no
  ``CALLSTREAM_DASH_TOKEN``): the dashboard is open as one local operator, and
  it refuses to bind anything but loopback.
- Once any account exists, every page, callback and download needs one, on
  loopback too. Browsers log in at ``/login`` and get a signed, expiring
  session cookie (``CALLSTREAM_DASH_SESSION_S``; a new password or a removed
  account ends it); scripts send HTTP Basic with the same accounts
  (``curl -u``). ``CALLSTREAM_DASH_USERS`` pairs and the token are operator
  accounts (a token as ``Authorization: Bearer``, or once as ``?token=`` in a
  link, which sets an HttpOnly cookie and redirects without it).
- Failed logins (form or Basic) of one name or one address past
  ``CALLSTREAM_DASH_LOGIN_ATTEMPTS`` within 5 minutes are answered 429 until
  the window has passed, without checking the password.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets
import threading
from collections import OrderedDict
from typing import Any
from urllib.parse import urlencode

from common.config import Settings
from common.errors import UsageError
from dashboards import i18n, login
from dashboards.access import LOCAL
from dashboards.accounts import Store, User
from dashboards.throttle import Throttle

COOKIE = "callstream_token"
SESSION = "callstream_session"
LOGIN_PATH, LOGOUT_PATH = "/login", "/logout"
OPEN_PATHS = ("/healthz", LOGIN_PATH)  # /healthz answers "ok" and nothing else
_VERIFIED_MAX = 1000


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
    """Refuse (UsageError) to serve a non-loopback address without any account."""
    users = parse_users(settings.dash_users)
    if not is_loopback(settings.dash_host) and not users and not settings.dash_token \
            and not Store(settings.accounts_path).any():
        raise UsageError(f"refusing to serve on {settings.dash_host} without credentials: add an "
                         "account (callstream users add), set CALLSTREAM_DASH_USERS (user:password,...) "
                         "or CALLSTREAM_DASH_TOKEN, or bind 127.0.0.1")


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class Auth:
    """The accounts of one dashboard: who a request is, logins and their throttle."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store or Store(settings.accounts_path)
        self.legacy = parse_users(settings.dash_users)
        self.token = settings.dash_token
        self.throttle = Throttle(settings.dash_login_attempts)
        self._pepper = secrets.token_bytes(16)  # keys of the verified-Basic cache, never a password
        self._verified: OrderedDict[bytes, str] = OrderedDict()
        self._lock = threading.Lock()
        self._serializer: Any = None

    def accounts_exist(self) -> bool:
        """True once anyone must log in."""
        return bool(self.legacy or self.token or self.store.any())

    def serializer(self) -> Any:
        """Signs and checks session cookies with the store's secret (made on first use)."""
        if self._serializer is None:
            from itsdangerous import URLSafeTimedSerializer

            self._serializer = URLSafeTimedSerializer(self.store.secret(), salt="callstream-session")
        return self._serializer

    def user_named(self, name: str) -> User | None:
        """An account by name: the store's, else a legacy operator."""
        user = self.store.get(name)
        if user is None and name in self.legacy:
            user = User(name, "operator", (), listen=True, stamp="legacy")
        return user

    def check_password(self, name: str, password: str) -> User | None:
        """The account if the password is right (verified scrypt results cached a while)."""
        if name in self.legacy and self.store.get(name) is None:
            return self.user_named(name) if _equal(password, self.legacy[name]) else None
        key = hmac.new(self._pepper, f"{name}\0{password}".encode(), hashlib.sha256).digest()
        user = self.store.get(name)
        with self._lock:
            if user is not None and self._verified.get(key) == user.stamp:
                return user
        user = self.store.authenticate(name, password)
        if user is not None:
            with self._lock:
                self._verified[key] = user.stamp
                while len(self._verified) > _VERIFIED_MAX:
                    self._verified.popitem(last=False)
        return user

    def attempt(self, name: str, password: str, address: str) -> tuple[User | None, float]:
        """(the account or None, seconds to wait when throttled) for one login try."""
        keys = (f"user:{name}", f"addr:{address}")
        wait = self.throttle.wait_s(*keys)
        if wait > 0:
            return None, wait
        user = self.check_password(name, password)
        if user is None:
            self.throttle.failed(*keys)
        else:
            self.throttle.succeeded(keys[0])
        return user, 0.0

    def session_cookie(self, user: User) -> str:
        """A signed session value for ``user`` (its password stamp inside)."""
        return self.serializer().dumps({"u": user.name, "s": user.stamp})

    def from_session(self, value: str | None) -> User | None:
        """The account a session cookie names, if it is signed, unexpired and still current."""
        if not value or len(value) > 4096:
            return None
        from itsdangerous import BadData

        try:
            data = self.serializer().loads(value, max_age=self.settings.dash_session_s)
        except BadData:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("u"), str):
            return None
        user = self.user_named(data["u"])
        return user if user is not None and hmac.compare_digest(str(data.get("s")), user.stamp) else None

    def identify(self, request: Any) -> tuple[User | None, float]:
        """(who sent ``request`` or None, seconds to wait when Basic logins are throttled)."""
        scheme, _, value = (request.headers.get("Authorization") or "").partition(" ")
        if self.token and scheme.lower() == "bearer" and _equal(value.strip(), self.token):
            return User("token", "operator", (), listen=True, stamp="legacy"), 0.0
        if self.token and _equal(request.cookies.get(COOKIE) or "", self.token):
            return User("token", "operator", (), listen=True, stamp="legacy"), 0.0
        if scheme.lower() == "basic":
            try:
                name, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None, 0.0
            return self.attempt(name, password, request.remote_addr or "-")
        return self.from_session(request.cookies.get(SESSION)), 0.0


def _wants_page(request: Any) -> bool:
    """A browser navigating to a page (sent to the login form), not a script or a callback."""
    return request.method == "GET" and not request.path.startswith(("/_dash", "/download", "/_reload")) \
        and "text/html" in (request.headers.get("Accept") or "")


def install(server: Any, settings: Settings, store: Store | None = None) -> Auth:
    """Guard every route of the Flask ``server``, add /login, /logout and /lang/<code>, and add
    headers that keep the pages out of frames and stop content sniffing."""
    from flask import g, make_response, redirect, request

    auth = Auth(settings, store)

    @server.after_request
    def _headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    def denied(wait: float) -> Any:
        if wait > 0:
            return make_response(i18n._("Too many failed logins; try again later.") + "\n", 429,
                                 {"Retry-After": str(int(wait) + 1)})
        if _wants_page(request):
            return redirect(LOGIN_PATH + "?" + urlencode({"next": login.safe_next(request.full_path.rstrip("?"))}))
        response = make_response(i18n._("authentication required") + "\n", 401)
        response.headers["WWW-Authenticate"] = 'Basic realm="callstream", charset="UTF-8"'
        return response

    @server.before_request
    def _guard() -> Any:
        g.callstream_locale = i18n.choose(request.cookies.get(i18n.COOKIE), None,
                                          request.headers.get("Accept-Language"), settings.dash_locale)
        if request.path == "/healthz":
            return None
        user, wait = auth.identify(request)
        if user is None and not auth.accounts_exist():
            user = LOCAL
        if user is not None:
            g.callstream_user = user
            g.callstream_locale = i18n.choose(request.cookies.get(i18n.COOKIE), user.locale,
                                              request.headers.get("Accept-Language"), settings.dash_locale)
            return None
        if request.path in (LOGIN_PATH, LOGOUT_PATH) or request.path.startswith("/lang/"):
            return None
        offered = request.args.get("token")
        if auth.token and offered is not None and _equal(offered, auth.token):
            rest = {k: v for k, v in request.args.items(multi=True) if k != "token"}
            response = redirect(request.path + ("?" + urlencode(rest) if rest else ""))
            response.set_cookie(COOKIE, auth.token, httponly=True, samesite="Strict", secure=request.is_secure)
            return response
        return denied(wait)

    _routes(server, auth)
    return auth


def _routes(server: Any, auth: Auth) -> None:
    from flask import g, make_response, redirect, request

    def login_page() -> Any:
        if request.method == "GET":
            return make_response(login.page(request.args.get("next") or "/"), 200,
                                 {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"})
        name = (request.form.get("name") or "")[:64]
        password = (request.form.get("password") or "")[:1024]
        nxt = login.safe_next(request.form.get("next"))
        user, wait = auth.attempt(name, password, request.remote_addr or "-")
        if user is None:
            text = i18n._("Too many failed logins; try again later.") if wait else \
                i18n._("Wrong user name or password.")
            return make_response(login.page(nxt, text, name), 429 if wait else 401,
                                 {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
                                  **({"Retry-After": str(int(wait) + 1)} if wait else {})})
        response = redirect(nxt)
        response.set_cookie(SESSION, auth.session_cookie(user), httponly=True, samesite="Lax",
                            secure=request.is_secure, max_age=int(auth.settings.dash_session_s))
        return response

    def logout() -> Any:
        response = redirect(LOGIN_PATH)
        response.delete_cookie(SESSION)
        response.delete_cookie(COOKIE)
        return response

    def language(code: str) -> Any:
        response = redirect(login.safe_next(request.args.get("next") or "/"))
        if code in i18n.LOCALES:
            response.set_cookie(i18n.COOKIE, code, max_age=365 * 86400, samesite="Lax", secure=request.is_secure)
            user = getattr(g, "callstream_user", None)
            if user is not None and auth.store.get(user.name) is not None:
                auth.store.set_preferences(user.name, locale=code)
        return response

    server.add_url_rule(LOGIN_PATH, "login", login_page, methods=["GET", "POST"])
    server.add_url_rule(LOGOUT_PATH, "logout", logout)
    server.add_url_rule("/lang/<code>", "language", language)
