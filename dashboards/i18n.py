"""Languages of the dashboard: a gettext message catalogue (Babel) and the request's locale.

Every text a page prints goes through :func:`_` (or :func:`ngettext`); the
catalogues are ``dashboards/locale/<lang>/LC_MESSAGES/callstream.po``,
compiled to ``.mo`` files that ship with the package (``make messages``
extracts and compiles again; a unit test fails when a ``.mo`` is older than
its ``.po`` or a message has no translation). Numbers, money and dates are
formatted by Babel for the same locale (formatting.py).

The locale of a request: the ``callstream_lang`` cookie (the user's choice,
also saved with a logged-in account), else the account's saved choice, else
the browser's ``Accept-Language``, else ``CALLSTREAM_DASH_LOCALE``.
"""

from __future__ import annotations

import contextvars
from functools import cache
from pathlib import Path
from typing import Any

from babel.support import NullTranslations, Translations

LOCALES = ("en", "ru")
DEFAULT = "en"
DOMAIN = "callstream"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
COOKIE = "callstream_lang"
_outside: contextvars.ContextVar[str] = contextvars.ContextVar("callstream_locale", default=DEFAULT)


@cache
def translations(locale: str) -> NullTranslations:
    """The compiled catalogue of ``locale`` (English: the message ids themselves)."""
    if locale == "en":
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [locale], DOMAIN)


def current_locale() -> str:
    """The locale of the request being served (outside a request: ``speaking``'s, else English)."""
    from flask import g, has_request_context

    if has_request_context():
        return getattr(g, "callstream_locale", None) or DEFAULT
    return _outside.get()


class speaking:
    """``with speaking("ru"):`` — outside a request, render in that locale (tests, bench)."""

    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in LOCALES else DEFAULT
        self._token: contextvars.Token | None = None

    def __enter__(self) -> str:
        self._token = _outside.set(self.locale)
        return self.locale

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _outside.reset(self._token)


def _(message: str) -> str:
    """``message`` in the current locale."""
    return translations(current_locale()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n`` in the current locale (Russian has three)."""
    return translations(current_locale()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks ``message`` for the catalogue without translating it now (module constants)."""
    return message


def negotiate(accept_language: str | None, default: str = DEFAULT) -> str:
    """The best of ``LOCALES`` for an ``Accept-Language`` header (``ru-RU,ru;q=0.9,en;q=0.5``)."""
    best, best_q = None, 0.0
    for part in (accept_language or "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if lang in LOCALES and q > best_q:
            best, best_q = lang, q
    return best or default


def choose(cookie: Any, saved: Any, accept_language: str | None, default: str) -> str:
    """The request's locale: a valid cookie, else the account's choice, else the browser's."""
    for value in (cookie, saved):
        if isinstance(value, str) and value in LOCALES:
            return value
    return negotiate(accept_language, default)
