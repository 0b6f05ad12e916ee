"""Field checks of contract v1, used by :mod:`streams.domain.validation`.

Each check reads one field of a parsed JSON object and returns its domain value,
or raises :class:`Reject` with ``missing_field:<name>`` / ``bad_field:<name>``.
The success path is one ``dict.get``, one exact type test and at most one
precompiled regex: this runs for every field of every event.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Collection
from decimal import Decimal
from typing import Any

from streams.domain.events import SOURCES, VOICEMAIL
from streams.domain.shared import MAX_TEXT_CHARS
from streams.domain.timefmt import parse_ts_us

MISSING: Any = object()  # sentinel: the field is absent (distinct from JSON null)
INT64_MAX = 2**63 - 1  # integers beyond a signed 64-bit BIGINT are refused
SHOW_CHARS = 80  # offending values are quoted in errors up to this many characters

_FLOAT_MAX = sys.float_info.max

_ID_CHARS = r"[A-Za-z0-9._:-]{1,64}"
_PHONE = r"\+[0-9]{3,15}"
_is_id = re.compile(_ID_CHARS).fullmatch
_is_phone = re.compile(_PHONE).fullmatch
_is_party = re.compile(rf"{_PHONE}|user:{_ID_CHARS}").fullmatch
# Scheme case-insensitive (RFC 3986 3.1); optional userinfo; a non-empty host
# (reg-name or bracketed IP literal); an optional numeric port; then path/query/fragment.
_is_url = re.compile(
    r"(?i:https?)://(?:[^/?#@]*@)?(?:\[[0-9A-Za-z:.%]+\]|[^/?#@:\[\]]+)(?::[0-9]*)?(?:[/?#].*)?",
    re.DOTALL,
).fullmatch

# The time of day of a contract timestamp, read from offset 10 (after YYYY-MM-DD).
_is_clock = re.compile(
    r"[Tt]([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])(?:\.([0-9]{1,6}))?(?:[Zz]|\+00:00)"
).fullmatch
_DAY_US: dict[str, Any] = {}  # "YYYY-MM-DD" -> midnight in UTC microseconds, or None
_DAY_CACHE_SIZE = 4096

_ID_TEXT = "an id (1-64 characters of A-Z a-z 0-9 . _ : -)"
_PHONE_TEXT = "a phone (+ and 3-15 digits)"
_TS_TEXT = "an RFC 3339 UTC timestamp (0-6 fraction digits, Z or +00:00)"


class Reject(Exception):
    """The first contract violation found; ``validate`` turns it into a ``Rejection``."""

    __slots__ = ("reason", "error")

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(reason, error)
        self.reason = reason
        self.error = error


def clip(text: str) -> str:
    """``text`` cut to SHOW_CHARS characters, an ellipsis marking the cut."""
    return text if len(text) <= SHOW_CHARS else text[: SHOW_CHARS - 3] + "..."


def show(x: Any) -> str:
    """A short human rendering of an offending JSON value (never the whole of a big one)."""
    if x is None:
        return "null"
    if x is True or x is False:
        return "true" if x else "false"
    if type(x) is dict:
        return f"an object with {len(x)} keys"
    if type(x) is list:
        return f"an array of length {len(x)}"
    if isinstance(x, (str, bytes)):
        # Slice before repr: the value may be a megabyte long.
        return clip(repr(x[: SHOW_CHARS + 1]))
    return clip(repr(x))


def fail(name: str, x: Any, expected: str) -> Reject:
    """The rejection for field ``name`` holding ``x`` (MISSING when absent)."""
    if x is MISSING:
        return Reject(f"missing_field:{name}", f"{name} is missing")
    return Reject(f"bad_field:{name}", f"{name} must be {expected}, got {show(x)}")


def ident(d: dict, name: str) -> str:
    """A required id."""
    x = d.get(name, MISSING)
    if type(x) is str and _is_id(x):
        return x
    raise fail(name, x, _ID_TEXT)


_KNOWN_IDS: set[str] = set()  # ids that passed the check; bounded below
_KNOWN_IDS_MAX = 100_000


def known_ident(d: dict, name: str) -> str:
    """``ident`` for ids that repeat from event to event (portal, node, call).

    A set lookup replaces the regex for an id already accepted: three of the
    envelope's four ids are such, on every event. Event ids never repeat and
    go through ``ident``.
    """
    x = d.get(name, MISSING)
    if type(x) is str and x in _KNOWN_IDS:
        return x
    x = ident(d, name)
    if len(_KNOWN_IDS) >= _KNOWN_IDS_MAX:
        _KNOWN_IDS.clear()
    _KNOWN_IDS.add(x)
    return x


def nullable_ident(d: dict, name: str) -> str | None:
    """An id, or None when null or absent."""
    x = d.get(name)
    if x is None or (type(x) is str and _is_id(x)):
        return x
    raise fail(name, x, f"{_ID_TEXT} or null")


def source(d: dict, expected: str, kind: str) -> str:
    """The envelope ``source``: the one the contract's table gives for ``kind``."""
    x = d.get("source", MISSING)
    if type(x) is str and x == expected:
        return x
    if type(x) is str and x in SOURCES:
        raise Reject("bad_field:source", f"source of {kind} must be {expected!r}, got {show(x)}")
    raise fail("source", x, "'voice' or 'controller'")


def timestamp(d: dict, name: str) -> int:
    """A required contract timestamp, as UTC microseconds."""
    x = d.get(name, MISSING)
    # isascii: parse_ts_us's \d would also take non-ASCII digits, which RFC 3339 does not.
    if type(x) is str and x.isascii():
        ts_us = ts_to_us(x)
        if ts_us is not None:
            return ts_us
    raise fail(name, x, _TS_TEXT)


def ts_to_us(text: str) -> int | None:
    """``timefmt.parse_ts_us`` with the date part memoised; same answers, 3x faster.

    The calendar (which dates exist) stays with parse_ts_us; only the time of day,
    whose bounds are fixed (23:59:59, no leap second), is read here.
    """
    clock = _is_clock(text, 10)
    if clock is None:
        return None
    day_us = _DAY_US.get(text[:10], MISSING)
    if day_us is MISSING:
        if len(_DAY_US) >= _DAY_CACHE_SIZE:
            _DAY_US.clear()  # bounded: hostile input must not grow it without limit
        day_us = _DAY_US[text[:10]] = parse_ts_us(text[:10] + "T00:00:00Z")
        if day_us is None:
            return None
    elif day_us is None:
        return None
    hour, minute, second, fraction = clock.groups()
    micros = int(fraction.ljust(6, "0")) if fraction else 0
    return day_us + (int(hour) * 3600 + int(minute) * 60 + int(second)) * 1_000_000 + micros


def enum(d: dict, name: str, allowed: Collection[str]) -> str:
    """One of ``allowed``, exactly (case-sensitive)."""
    x = d.get(name, MISSING)
    if type(x) is str and x in allowed:
        return x
    raise fail(name, x, "one of " + ", ".join(sorted(allowed)))


def party(d: dict, name: str) -> str:
    """A phone or a ``user:<id>`` reference (``from``/``to`` of call.started)."""
    x = d.get(name, MISSING)
    if type(x) is str and _is_party(x):
        return x
    raise fail(name, x, f"{_PHONE_TEXT} or a user ref (user:<id>)")


def forward_target(d: dict, name: str) -> str:
    """A phone or the literal ``"voicemail"`` (``to`` of call.forwarded)."""
    x = d.get(name, MISSING)
    if type(x) is str and (x == VOICEMAIL or _is_phone(x)):
        return x
    raise fail(name, x, f"{_PHONE_TEXT} or \"voicemail\"")


def nullable_phone(d: dict, name: str) -> str | None:
    """A phone, or None when null or absent."""
    x = d.get(name)
    if x is None or (type(x) is str and _is_phone(x)):
        return x
    raise fail(name, x, f"{_PHONE_TEXT} or null")


def nullable_text(d: dict, name: str) -> str | None:
    """A string of 1-64 printable characters, or None when null or absent."""
    x = d.get(name)
    if x is None or (type(x) is str and 0 < len(x) <= 64 and x.isprintable()):
        return x
    raise fail(name, x, "a string of 1-64 printable characters or null")


def flag(d: dict, name: str) -> bool:
    """A JSON bool; absent means false (null is refused: it is not a bool)."""
    x = d.get(name, False)
    if type(x) is bool:
        return x
    raise fail(name, x, "true or false")


def integer(d: dict, name: str, minimum: int) -> int:
    """A JSON integer (not a bool, not 2.0) in ``[minimum, 2**63 - 1]``."""
    x = d.get(name, MISSING)
    if type(x) is int and minimum <= x <= INT64_MAX:
        return x
    raise fail(name, x, f"an integer >= {minimum}")


def seconds(d: dict, name: str) -> Decimal:
    """A finite JSON number >= 0 (int or float, not bool), as ``Decimal(str(x))``."""
    x = d.get(name, MISSING)
    if type(x) is int and 0 <= x <= INT64_MAX:
        return Decimal(x)
    if type(x) is float and 0.0 <= x <= _FLOAT_MAX:
        return Decimal(repr(x + 0.0))  # + 0.0 turns -0.0 into 0.0
    raise fail(name, x, "a finite number >= 0")


def url(d: dict, name: str) -> str:
    """An http(s) URL of at most 2,048 characters, with a non-empty host and no whitespace or controls."""
    x = d.get(name, MISSING)
    # isprintable refuses controls, surrogates and every space but " ", refused next.
    if type(x) is str and len(x) <= MAX_TEXT_CHARS and x.isprintable() and " " not in x and _is_url(x):
        return x
    if type(x) is str and len(x) > MAX_TEXT_CHARS:
        raise Reject(f"bad_field:{name}", f"{name} is {len(x)} characters long, over the "
                                          f"{MAX_TEXT_CHARS}-character limit")
    raise fail(name, x, "an http:// or https:// URL with a host, without spaces or controls")
