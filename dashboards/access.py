"""Who is asking, and the scope every query of the dashboard runs in.

The auth layer (auth.py) puts the logged-in user on ``flask.g`` before any
route or callback runs. :func:`current_user` reads it back; inside a request
that has none (a route auth left open) it answers "nobody" — a scope of no
portal — so a forgotten check shows nothing rather than everything.

:func:`scoped_call` is what ``Data.get`` runs: every ``CallFilter`` argument
gets the user's scope, every query with a ``scope`` parameter gets it as
that argument (overriding anything a caller passed), and a query that has
neither cannot run for a user limited to some portals. Callback values
never reach the scope: it comes from the account only.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from dashboards.accounts import User
from warehouse.filters import CallFilter

# The single-user demo (loopback, no accounts) and code outside any request (tests
# calling a page's render function, the bench) act as this operator.
LOCAL = User("local", "operator", (), listen=True)
NOBODY = User("-", "viewer", ())
_outside: contextvars.ContextVar[User] = contextvars.ContextVar("callstream_user", default=LOCAL)


class Forbidden(PermissionError):
    """The user may not run this query or open this thing."""


def current_user() -> User:
    """The user of the request being served (outside a request: ``acting_as``'s, else LOCAL)."""
    try:
        from flask import g, has_request_context
    except ImportError:  # pragma: no cover - flask ships with dash
        return _outside.get()
    if has_request_context():
        return getattr(g, "callstream_user", None) or NOBODY
    return _outside.get()


class acting_as:
    """``with acting_as(user):`` — outside a request, run page code as ``user`` (tests, bench)."""

    def __init__(self, user: User) -> None:
        self.user = user
        self._token: contextvars.Token | None = None

    def __enter__(self) -> User:
        self._token = _outside.set(self.user)
        return self.user

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _outside.reset(self._token)


@lru_cache(maxsize=256)
def _takes_scope(query: Callable[..., Any]) -> bool:
    try:
        return "scope" in inspect.signature(query).parameters
    except (TypeError, ValueError):
        return False


def scoped_call(query: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                scope: tuple[str, ...] | None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``args``/``kwargs`` of ``query`` narrowed to ``scope`` (None: every portal).

    Forbidden when ``scope`` limits the user and the query can take no scope at all.
    """
    scope = None if scope is None else tuple(scope)
    found = False

    def narrow(value: Any) -> Any:
        nonlocal found
        if isinstance(value, CallFilter):
            found = True
            return value.replace(scope=scope)
        return value

    args = tuple(narrow(a) for a in args)
    kwargs = {k: narrow(v) for k, v in kwargs.items()}
    if _takes_scope(query):
        kwargs["scope"] = scope
        found = True
    if scope is not None and not found:
        raise Forbidden(f"{query.__qualname__} cannot be limited to a user's portals")
    return args, kwargs
