"""Where an aggregate query reads: a rollup when one answers the filter exactly, else the calls.

Three grains, the cheapest that can answer first (rollups.py):

- the daily rollups (``cdrs_daily``, ``recordings_daily``, ``user_spend_daily``) know whole
  UTC days: a filter whose bounds are UTC midnights, grouped (if at all) by UTC day;
- the hourly rollups (``cdrs_hourly``, ``user_spend_hourly``, ``recordings_hourly``) know
  whole UTC hours. Every local day or hour of a zone whose offset from UTC is a whole
  number of hours is a set of whole UTC hours, so its hours add up to the days of Moscow,
  Berlin or New York, DST changes included:
  a filter whose bounds are whole UTC hours, grouped by the days or hours of such a zone;
- the calls themselves for the rest: talk or cost bounds, a number search, and the days
  of the few zones with a fractional offset (India +05:30, Nepal +05:45, Newfoundland
  −03:30, parts of Australia), whose midnights fall inside a UTC hour.

A query reads ``FROM {src.table} {src.where}`` with ``src.params``; when it groups by
``started_day``, that column is the day (or, for ``flt.hourly``, the wall-clock hour) of
``flt.zone``. Values only travel as parameters; the SQL text depends on which filters
are set, never on their values (a zone name is checked against the zone database and
quoted, filters.zone_literal).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from warehouse.filters import (
    BOUND_COLUMNS,
    LIST_COLUMNS,
    CallFilter,
    local_calls,
    scope_conditions,
    utc_start,
    where,
    where_clause,
    zone_literal,
)
from warehouse.schema import quote

DAILY_LISTS = frozenset({"portals", "lines", "directions", "statuses", "regions", "controllers"})
HOURLY_LISTS = DAILY_LISTS | {"causes"}
RECORDING_LISTS = frozenset({"portals", "users", "lines", "directions", "statuses", "controllers"})
USER_SPEND_LISTS = frozenset({"portals", "users"})
# Longest range whose local days are mapped hour by hour (a join with one row per hour);
# longer ones convert each rollup row instead.
MAP_HOURS_UP_TO = timedelta(days=3660)
_CHECK_FROM, _CHECK_TO = datetime(1900, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Source:
    """Where an aggregate query reads: raw ``cdrs`` or a rollup, its WHERE and their parameters.

    ``calls`` and ``recordings`` count calls in either (``count(*)`` or ``sum(calls)``);
    ``talk_s``, ``billed_s``, ``cost`` and ``recording_bytes`` are summed the same way in all.
    ``params`` holds the table's parameters (if any) first, then the WHERE's.
    """

    table: str
    where: str
    params: list[Any]
    calls: str
    recordings: str


def _day_of(moment: date | datetime) -> date | None:
    """The UTC day a bound stands for, or None if it is not a UTC midnight."""
    start = utc_start(moment)
    return start.date() if start.time() == time(0) else None


def _hour_of(moment: date | datetime) -> datetime | None:
    """The bound as an instant if it is a whole UTC hour, else None."""
    start = utc_start(moment)
    return start if (start.minute, start.second, start.microsecond) == (0, 0, 0) else None


@lru_cache(maxsize=4096)
def whole_hour_offsets(zone: str, start: datetime | None, end: datetime | None) -> bool:
    """True when ``zone``'s offset from UTC is a whole number of hours all through [start, end).

    Offsets change at most a few times a year and never for less than a day, so looking
    twice a day (and at the last instant) finds any fractional one; the range is looked at
    within 1900-2100 (beyond, a zone repeats its last rule).
    """
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    lo = max(start or _CHECK_FROM, _CHECK_FROM)
    hi = min(end or _CHECK_TO, _CHECK_TO)
    moments, at = [], lo
    while at < hi:
        moments.append(at)
        at += timedelta(hours=12)
    moments.append(max(lo, hi - timedelta(microseconds=1)))
    return all(at.astimezone(tz).utcoffset() % timedelta(hours=1) == timedelta(0) for at in moments)


def _bounds(flt: CallFilter, hourly: bool) -> tuple[list[str], list[Any]] | None:
    """Conditions of the filter's time bounds on a rollup of the grain, or None if it cannot say them."""
    conditions, params = [], []
    for bound, op in ((flt.start, ">="), (flt.end, "<")):
        if bound is None:
            continue
        value = _hour_of(bound) if hourly else _day_of(bound)
        if value is None:
            return None
        conditions.append(f"{'started_hour' if hourly else 'started_day'} {op} ?")
        params.append(value)
    return conditions, params


def rollup_conditions(flt: CallFilter, lists: frozenset[str] = DAILY_LISTS, recorded_only: bool = False,
                      daily: bool = False, hourly: bool = False) -> tuple[list[str], list[Any]] | None:
    """Conditions over a rollup equivalent to ``flt``, or None when it cannot express it.

    A rollup knows whole UTC days (or, ``hourly``, hours) and the list filters named in
    ``lists``; talk or cost bounds and number search need the calls themselves. ``daily``:
    the query groups by day, which a daily rollup knows only as UTC days, and the hourly one
    as the days or hours of a zone with whole-hour offsets.
    """
    if daily and not hourly and (flt.zone != "UTC" or flt.hourly):
        return None
    if daily and hourly and not whole_hour_offsets(flt.zone, _instant(flt.start), _instant(flt.end)):
        return None
    if flt.number or any(getattr(flt, name) is not None for name, _, _ in BOUND_COLUMNS):
        return None
    if flt.has_recording is not None and not (recorded_only and flt.has_recording):
        return None
    bounds = _bounds(flt, hourly)
    if bounds is None:
        return None
    scoped, scope_params = scope_conditions(flt.scope)
    conditions, params = scoped + bounds[0], scope_params + bounds[1]
    for field_name, column in LIST_COLUMNS:
        values = list(getattr(flt, field_name) or ())
        if values and field_name not in lists:
            return None
        if values:
            conditions.append(f"{quote(column)} IN ({', '.join('?' * len(values))})")
            params += values
    return conditions, params


def _instant(moment: date | datetime | None) -> datetime | None:
    return None if moment is None else utc_start(moment)


def local_hours(flt: CallFilter, table: str) -> tuple[str, list[Any]]:
    """``table`` (an hourly rollup) with ``started_day`` the day (or wall-clock hour) of ``flt.zone``.

    The zone is applied once per hour of the range (a small join), not once per rollup row;
    an open or very long range converts each row instead.
    """
    zone = zone_literal(flt.zone)

    def bucket(column: str) -> str:
        local = f"timezone({zone}, {column})"
        return local if flt.hourly else f"CAST({local} AS DATE)"

    start, end = _instant(flt.start), _instant(flt.end)
    if start is None or end is None or end - start > MAP_HOURS_UP_TO:
        return f"(SELECT * REPLACE ({bucket('started_hour')} AS started_day) FROM {table})", []
    hours = (f"SELECT range AS hr, {bucket('range')} AS local_day FROM "
             "range(CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), INTERVAL 1 HOUR)")
    return (f"(SELECT r.* REPLACE (m.local_day AS started_day) FROM {table} r "
            f"JOIN ({hours}) m ON r.started_hour = m.hr)"), [start, end]


def _rolled(flt: CallFilter, table: str, calls: str, recordings: str, lists: frozenset[str] = DAILY_LISTS,
            recorded_only: bool = False, extra: tuple[str, ...] = (), daily: bool = False,
            hourly: bool = False) -> Source | None:
    """``table`` (a rollup) as the source of ``flt``, or None when it cannot express the filter."""
    rolled = rollup_conditions(flt, lists, recorded_only, daily, hourly)
    if rolled is None:
        return None
    conditions, params = rolled
    source, table_params = local_hours(flt, table) if hourly and daily else (table, [])
    return Source(source, where_clause(conditions + list(extra)), table_params + params, calls, recordings)


def aggregate_source(flt: CallFilter, raw_extra: tuple[str, ...] = (),
                     dimension_extra: tuple[str, ...] = (), *, daily: bool = False) -> Source:
    """The daily rollup, else the hourly one, when it can answer ``flt`` exactly, else the calls.

    ``raw_extra`` conditions apply to the calls only (they may narrow rows for speed);
    ``dimension_extra`` conditions, on rollup dimensions, apply to all. A rollup row
    may be negative (views.py), so nothing may filter on its measures: use HAVING.
    ``daily``: the query groups by ``started_day``, which is then the day (or hour) of
    ``flt.zone``.
    """
    for table, lists, hourly in (("cdrs_daily", DAILY_LISTS, False), ("cdrs_hourly", HOURLY_LISTS, True)):
        rolled = _rolled(flt, table, "sum(calls)", "sum(recordings)", lists, extra=dimension_extra, daily=daily,
                         hourly=hourly)
        if rolled is not None:
            return rolled
    clause, params = where(flt, *raw_extra, *dimension_extra)
    return Source(local_calls(flt) if daily else "cdrs", clause, params, "count(*)",
                  "count(*) FILTER (recording_bytes > 0)")


def causes_source(flt: CallFilter) -> Source:
    """Where counts by hang-up cause read: the hourly rollup (the only one with the cause) when it
    can answer ``flt`` exactly, else the calls."""
    rolled = _rolled(flt, "cdrs_hourly", "sum(calls)", "sum(recordings)", HOURLY_LISTS, hourly=True)
    if rolled is not None:
        return rolled
    clause, params = where(flt)
    return Source("cdrs", clause, params, "count(*)", "count(*) FILTER (recording_bytes > 0)")


def user_spend_source(flt: CallFilter, *, daily: bool = False) -> Source:
    """Where per-employee spend reads: the ``user_spend_daily`` rollup, else ``user_spend_hourly``,
    when one can answer ``flt`` exactly (whole UTC days, or whole hours and the days of a
    whole-hour zone; portals, users), else the paid calls of employees."""
    for table, hourly in (("user_spend_daily", False), ("user_spend_hourly", True)):
        rolled = _rolled(flt, table, "sum(calls)", "0", USER_SPEND_LISTS, daily=daily, hourly=hourly)
        if rolled is not None:
            return rolled
    clause, params = where(flt, "user_id IS NOT NULL", "cost > 0")
    return Source(local_calls(flt) if daily else "cdrs", clause, params, "count(*)", "0")


def recordings_source(flt: CallFilter, *, daily: bool = False) -> Source:
    """Where per-user recording queries read: the ``recordings_daily`` rollup, else
    ``recordings_hourly``, when one can answer ``flt`` exactly (whole UTC days, or whole hours
    and the days of a whole-hour zone), else the calls with a recording."""
    for table, hourly in (("recordings_daily", False), ("recordings_hourly", True)):
        rolled = _rolled(flt, table, "sum(recordings)", "sum(recordings)", RECORDING_LISTS,
                         recorded_only=True, daily=daily, hourly=hourly)
        if rolled is not None:
            return rolled
    clause, params = where(flt, "recording_bytes > 0")
    return Source(local_calls(flt) if daily else "cdrs", clause, params, "count(*)", "count(*)")


def recorded_count_source(flt: CallFilter) -> Source | None:
    """A rollup as the source of a count of calls with (or without) a recording, or None.

    The rollups count the recorded calls of each group (``recordings``), so a filter on
    having a recording needs no calls when the rest of it is the rollup's.
    """
    if flt.has_recording is None:
        return None
    measure = "sum(recordings)" if flt.has_recording else "sum(calls) - sum(recordings)"
    for table, lists, hourly in (("cdrs_daily", DAILY_LISTS, False), ("cdrs_hourly", HOURLY_LISTS, True)):
        rolled = _rolled(flt.replace(has_recording=None), table, measure, "sum(recordings)", lists, hourly=hourly)
        if rolled is not None:
            return rolled
    return None
