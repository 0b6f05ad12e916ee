"""Filter controls of the pages and their one translation into a ``CallFilter``.

Every page builds its filter with :func:`call_filter` from the values of its
controls (a plain dict, the same one the CSV download link carries), so a
filter means the same calls on every page, in every chart and in the export.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from warehouse.filters import CallFilter

PERIODS = {"today": "Today", "7d": "7 days", "30d": "30 days", "month": "This month",
           "90d": "90 days", "365d": "Year"}
DEFAULT_PERIOD = "30d"
# Contract v1 enumerations (the values a CDR can hold).
LINES = ("rented", "operator", "sip", "internal")
DIRECTIONS = ("inbound", "outbound", "internal")
STATUSES = ("answered", "missed", "busy", "rejected", "failed", "incomplete")
CONTROLLER = ("checked", "bypassed", "none")
LIST_FIELDS = {"portals": "portals", "users": "users", "lines": "lines", "directions": "directions",
               "statuses": "statuses", "regions": "regions", "controllers": "controllers"}
BOUND_FIELDS = ("min_talk_s", "max_talk_s", "min_cost", "max_cost")


class FilterError(ValueError):
    """A control holds a value no filter can use (the message says which)."""


def period_bounds(period: str | None, today: date) -> tuple[date, date]:
    """[start, end) UTC days of a named period ending with ``today``."""
    end = today + timedelta(days=1)
    key = period if period in PERIODS else DEFAULT_PERIOD
    if key == "today":
        return today, end
    if key == "month":
        return today.replace(day=1), end
    return end - timedelta(days=int(key[:-1])), end


def previous_period(start: date, end: date) -> tuple[date, date]:
    """The period of the same length just before [start, end)."""
    return start - (end - start), start


def _day(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise FilterError(f"{name}: not a date: {value!r}") from None


def _decimal(value: Any, name: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise FilterError(f"{name}: not a number: {value!r}") from None
    if not number.is_finite() or number < 0:
        raise FilterError(f"{name}: must be a number >= 0: {value!r}")
    return number


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        raise FilterError(f"{name}: expected a list of names")
    return tuple(sorted(set(values)))


def call_filter(values: Mapping[str, Any], today: date) -> CallFilter:
    """The CallFilter of a page's control values (unknown keys ignored; bad values: FilterError).

    ``start``/``end`` are inclusive UTC days as the date picker shows them; without them
    ``period`` (default 30 days) gives the range. ``recording`` is ``yes``, ``no`` or empty.
    """
    start, end = _day(values.get("start"), "start"), _day(values.get("end"), "end")
    if start is None or end is None:
        start, end = period_bounds(values.get("period"), today)
    else:
        end += timedelta(days=1)  # the picker's last day is included
    if start >= end:
        raise FilterError("the first day is after the last day")
    lists = {field: _strings(values.get(key), key) for key, field in LIST_FIELDS.items()}
    bounds = {name: _decimal(values.get(name), name) for name in BOUND_FIELDS}
    recording = {"yes": True, "no": False}.get(values.get("recording") or "")
    number = (values.get("number") or "").strip() or None
    if number is not None and len(number) > 64:
        raise FilterError("number: at most 64 characters")
    return CallFilter(start=start, end=end, has_recording=recording, number=number, **lists, **bounds)


def clean_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The control values worth carrying in a link: empty ones dropped."""
    return {k: v for k, v in values.items() if v not in (None, "", [], ())}


def options(values: Any) -> list[dict[str, str]]:
    """Dropdown options from plain values (label = value, rendered as text)."""
    return [{"label": str(v), "value": str(v)} for v in values]

