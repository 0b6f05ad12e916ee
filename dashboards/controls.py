"""Filter controls of the pages and their one translation into a ``CallFilter``.

Every page builds its filter with :func:`call_filter` from the values of its
controls (a plain dict, the same one the CSV download link carries), so a
filter means the same calls on every page, in every chart and in the export.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from dashboards.i18n import N_
from warehouse.filters import CallFilter, local_start

PERIODS = {"today": N_("Today"), "7d": N_("7 days"), "30d": N_("30 days"), "month": N_("This month"),
           "90d": N_("90 days"), "365d": N_("Year")}
DEFAULT_PERIOD = "30d"
# Contract v1 enumerations (the values a CDR can hold).
LINES = ("rented", "operator", "sip", "internal")
DIRECTIONS = ("inbound", "outbound", "internal")
STATUSES = ("answered", "missed", "busy", "rejected", "failed", "incomplete")
CONTROLLER = ("checked", "bypassed", "none")
CAUSES = ("normal", "busy", "no_answer", "rejected", "failed", "license_error", "config_not_found", "forbidden")
LIST_FIELDS = {"portals": "portals", "users": "users", "lines": "lines", "directions": "directions",
               "statuses": "statuses", "regions": "regions", "controllers": "controllers",
               "causes": "causes"}
BOUND_FIELDS = ("min_talk_s", "max_talk_s", "min_cost", "max_cost")


# Bounds of what a filter may ask for: anything outside is a FilterError, never a failed query.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9998, 12, 31)
MAX_BOUND = Decimal(10) ** 12  # talk seconds or cost: DECIMAL(18, ...) columns hold less than 10^15
MAX_VALUES, MAX_NAME = 1000, 200  # names in one list, characters in one name
MAX_PAGE = 1_000_000  # 50 million calls at 50 a page; a page past the end shows the last one


class FilterError(ValueError):
    """A control holds a value no filter can use (the message says which)."""


def page_number(value: Any) -> int:
    """The page a (possibly forged) store holds: a whole number in [0, MAX_PAGE], else page 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if isinstance(value, float) and not value.is_integer():
        return 0
    return min(max(int(value), 0), MAX_PAGE)


def sort_choice(sort: Any, columns: Any, default: dict[str, Any]) -> dict[str, Any]:
    """The sort a (possibly forged) store holds if its column is one of ``columns``, else ``default``."""
    if not isinstance(sort, dict) or not isinstance(sort.get("column"), str) or sort["column"] not in columns:
        return dict(default)
    return {"column": sort["column"], "descending": bool(sort.get("descending", True))}


def period_bounds(period: Any, today: date) -> tuple[date, date]:
    """[start, end) UTC days of a named period ending with ``today`` (anything else: the default)."""
    end = today + timedelta(days=1)
    key = period if isinstance(period, str) and period in PERIODS else DEFAULT_PERIOD
    if key == "today":
        return today, end
    if key == "month":
        return today.replace(day=1), end
    return end - timedelta(days=int(key[:-1])), end


def previous_period(start: date, end: date) -> tuple[date, date]:
    """The period of the same length just before [start, end)."""
    return start - (end - start), start


def _short(value: Any) -> str:
    """A value for an error message: its repr, cut short (the input may be huge)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _day(value: Any, name: str) -> date | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FilterError(f"{name}: not a date: {_short(value)}")
    try:
        day = date.fromisoformat(value[:10])  # the picker may send a time after the day
    except ValueError:
        raise FilterError(f"{name}: not a date: {_short(value)}") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise FilterError(f"{name}: must be between {FIRST_DAY} and {LAST_DAY}")
    return day


def _decimal(value: Any, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise FilterError(f"{name}: not a number: {_short(value)}")
    try:
        number = Decimal(str(value)[:40])
    except InvalidOperation:
        raise FilterError(f"{name}: not a number: {_short(value)}") from None
    if not number.is_finite() or not 0 <= number <= MAX_BOUND:
        raise FilterError(f"{name}: must be a number >= 0 and <= {MAX_BOUND:,}: {_short(value)}")
    return number


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        raise FilterError(f"{name}: expected a list of names")
    if len(values) > MAX_VALUES or any(len(v) > MAX_NAME for v in values):
        raise FilterError(f"{name}: at most {MAX_VALUES} names of at most {MAX_NAME} characters")
    return tuple(sorted(set(values)))


def call_filter(values: Mapping[str, Any], today: date, zone: str = "UTC") -> CallFilter:
    """The CallFilter of a page's control values (unknown keys ignored; bad values: FilterError).

    ``start``/``end`` are inclusive days of ``zone`` as the date picker shows them; without
    them ``period`` (default 30 days) gives the range, ending with ``today`` (of ``zone``).
    A range of one day is counted by the hour. ``recording`` is ``yes``, ``no`` or empty.
    """
    start, end = _day(values.get("start"), "start"), _day(values.get("end"), "end")
    period = values.get("period")
    if period is not None and period != "" and not (isinstance(period, str) and period in PERIODS):
        raise FilterError(f"period: one of {', '.join(PERIODS)}")
    if start is None or end is None:
        start, end = period_bounds(period, today)
    else:
        end += timedelta(days=1)  # the picker's last day is included
    if start >= end:
        raise FilterError("the first day is after the last day")
    lists = {field: _strings(values.get(key), key) for key, field in LIST_FIELDS.items()}
    bounds = {name: _decimal(values.get(name), name) for name in BOUND_FIELDS}
    recording_value = values.get("recording") or ""
    if recording_value not in ("", "yes", "no"):
        raise FilterError(f"recording: expected yes, no or nothing: {_short(recording_value)}")
    recording = {"yes": True, "no": False}.get(recording_value)
    number_value = values.get("number") or ""
    if not isinstance(number_value, str):
        raise FilterError(f"number: expected text: {_short(number_value)}")
    number = number_value.strip() or None
    if number is not None and len(number) > 64:
        raise FilterError("number: at most 64 characters")
    return CallFilter(start=local_start(start, zone), end=local_start(end, zone), has_recording=recording,
                      number=number, zone=zone, hourly=(end - start).days == 1, **lists, **bounds)


def first_day(flt: CallFilter) -> date:
    """The first local day of a filter made by :func:`call_filter` (its start, in its zone)."""
    return _local_day(flt.start, flt.zone)


def last_day(flt: CallFilter) -> date:
    """The last local day of a filter made by :func:`call_filter` (inclusive)."""
    return _local_day(flt.end, flt.zone) - timedelta(days=1)


def _local_day(moment: Any, zone: str) -> date:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    if isinstance(moment, datetime):
        return moment.astimezone(ZoneInfo(zone)).date()
    return moment


def clean_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The control values worth carrying in a link: empty ones dropped."""
    return {k: v for k, v in values.items() if v not in (None, "", [], ())}


def options(values: Any) -> list[dict[str, str]]:
    """Dropdown options from plain values (label = value, rendered as text)."""
    return [{"label": str(v), "value": str(v)} for v in values]

