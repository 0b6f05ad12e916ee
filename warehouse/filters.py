"""Typed filters of the call pages and their one translation into parameterised SQL.

The dashboard builds a :class:`CallFilter` from its controls; every query in
:mod:`warehouse.queries` turns it into a WHERE clause here, so the same
filter means the same rows on every page and in the export. Values only ever
travel as parameters; the SQL text depends on which filters are set and on
how many values a list has, never on the values themselves.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from warehouse.schema import quote

# Sort keys the call-detail page may ask for -> the column (whitelist: never user text).
SORT_COLUMNS: dict[str, str] = {
    name: quote(name)
    for name in ("started_at", "ended_at", "answered_at", "call_id", "portal_id", "direction",
                 "line", "from", "to", "user_id", "region", "status", "controller", "talk_s",
                 "duration_s", "billed_s", "cost", "recording_bytes", "version")
}

_NUMBER_NOISE = re.compile(r"[\s()\-.]")
_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-/]{0,63}")


def zone_literal(zone: str) -> str:
    """A time zone name as an SQL string literal: only IANA-shaped names (``Europe/Moscow``),
    checked against the zone database; anything else is a ValueError."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(zone, str) or not _ZONE.fullmatch(zone):
        raise ValueError(f"not a time zone name: {str(zone)[:40]!r}")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone: {zone!r}") from None
    return f"'{zone}'"


def local_calls(flt: CallFilter) -> str:
    """``cdrs`` with ``started_day`` re-computed as the call's day in ``flt.zone`` (or, hourly,
    the start of its hour there, a wall-clock timestamp), so every query that groups by
    ``started_day`` groups by the zone's days or hours."""
    if flt.zone == "UTC" and not flt.hourly:
        return "cdrs"
    local = f"timezone({zone_literal(flt.zone)}, started_at)"
    bucket = f"date_trunc('hour', {local})" if flt.hourly else f"CAST({local} AS DATE)"
    return f"(SELECT * REPLACE ({bucket} AS started_day) FROM cdrs)"


def utc_start(moment: date | datetime) -> datetime:
    """A date as 00:00 UTC of that day; an aware datetime as is (naive ones are refused)."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("naive datetime: pass an aware (UTC) datetime or a date")
        return moment.astimezone(UTC)
    return datetime.combine(moment, time(0), tzinfo=UTC)


def local_start(day: date, zone: str) -> date | datetime:
    """00:00 of ``day`` in ``zone``: the date itself for UTC (the rollups' days), else the instant."""
    if zone == "UTC":
        return day
    from zoneinfo import ZoneInfo

    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


@dataclass(frozen=True)
class CallFilter:
    """Filters of the call pages; an unset field (None or empty tuple) filters nothing.

    ``start``/``end``: ``started_at`` in [start, end) (dates mean 00:00 UTC; calls
    without ``started_at`` only match when neither is set). ``number``: a part of
    ``from``, ``to``, ``line_number`` or ``shown_number`` (spaces, dashes, dots and
    parentheses ignored). Talk and cost bounds are inclusive.
    """

    start: date | datetime | None = None
    end: date | datetime | None = None
    portals: Sequence[str] = ()
    lines: Sequence[str] = ()
    directions: Sequence[str] = ()
    statuses: Sequence[str] = ()
    regions: Sequence[str] = ()
    controllers: Sequence[str] = ()  # controller verdict: checked, bypassed, none
    users: Sequence[str] = ()
    causes: Sequence[str] = ()  # hangup_cause of call.ended
    has_recording: bool | None = None
    min_talk_s: Decimal | int | None = None
    max_talk_s: Decimal | int | None = None
    min_cost: Decimal | int | None = None
    max_cost: Decimal | int | None = None
    number: str | None = None
    # The portals the reader may see (None: all). Set by the dashboard from the logged-in
    # user, never from a control; unlike ``portals`` (a choice) it cannot be widened.
    scope: Sequence[str] | None = None
    # How a query groups calls by time: days (``started_day``) of this IANA zone, or its
    # hours when ``hourly``. Not a filter: ``start``/``end`` are instants either way.
    zone: str = "UTC"
    hourly: bool = False

    def replace(self, **changes: Any) -> CallFilter:
        """A copy with some fields changed."""
        from dataclasses import replace

        return replace(self, **changes)


ALL_CALLS = CallFilter()

LIST_COLUMNS = (("portals", "portal_id"), ("lines", "line"), ("directions", "direction"),
          ("statuses", "status"), ("regions", "region"), ("controllers", "controller"),
          ("users", "user_id"), ("causes", "hangup_cause"))
BOUND_COLUMNS = (("min_talk_s", "talk_s", ">="), ("max_talk_s", "talk_s", "<="),
           ("min_cost", "cost", ">="), ("max_cost", "cost", "<="))


def number_needle(number: str) -> str:
    """What a number search looks for: the text without spaces, dashes, dots, parentheses."""
    return _NUMBER_NOISE.sub("", number)


def scope_conditions(scope: Sequence[str] | None, column: str = "portal_id") -> tuple[list[str], list[Any]]:
    """The condition that keeps a reader to its portals: none for None, ``false`` for no portal."""
    if scope is None:
        return [], []
    values = list(scope)
    if not values:
        return ["false"], []
    return [f"{quote(column)} IN ({', '.join('?' * len(values))})"], values


def call_conditions(flt: CallFilter) -> tuple[list[str], list[Any]]:
    """SQL conditions over the ``cdrs`` columns and their parameters, in order."""
    conditions, params = scope_conditions(flt.scope)
    if flt.start is not None:
        conditions.append("started_at >= ?")
        params.append(utc_start(flt.start))
    if flt.end is not None:
        conditions.append("started_at < ?")
        params.append(utc_start(flt.end))
    for field_name, column in LIST_COLUMNS:
        values = list(getattr(flt, field_name) or ())
        if values:
            conditions.append(f"{quote(column)} IN ({', '.join('?' * len(values))})")
            params += values
    if flt.has_recording is not None:
        conditions.append("recording_bytes > 0" if flt.has_recording else "recording_bytes = 0")
    for field_name, column, op in BOUND_COLUMNS:
        value = getattr(flt, field_name)
        if value is not None:
            conditions.append(f"{quote(column)} {op} ?")
            params.append(Decimal(value))
    if flt.number:
        needle = number_needle(flt.number)
        if needle:
            conditions.append('(contains("from", ?) OR contains("to", ?) '
                              'OR contains(line_number, ?) OR contains(shown_number, ?))')
            params += [needle] * 4
    return conditions, params


def where_clause(conditions: Sequence[str]) -> str:
    """``WHERE a AND b ...``, or an empty string when there is no condition."""
    return "WHERE " + " AND ".join(conditions) if conditions else ""


def where(flt: CallFilter, *extra: str) -> tuple[str, list[Any]]:
    """``WHERE ...`` (or an empty string) for ``flt`` plus constant ``extra`` conditions."""
    conditions, params = call_conditions(flt)
    return where_clause(conditions + list(extra)), params


def order_by(sort: str, descending: bool) -> str:
    """``ORDER BY`` for a whitelisted sort key, ties broken by call_id; ValueError otherwise."""
    try:
        column = SORT_COLUMNS[sort]
    except KeyError:
        raise ValueError(f"cannot sort calls by {sort!r}; choose one of {sorted(SORT_COLUMNS)}") from None
    direction = "DESC" if descending else "ASC"
    return f"ORDER BY {column} {direction} NULLS LAST, call_id {direction}"
