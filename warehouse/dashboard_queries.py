"""Named, parameterised queries the dashboard needs beyond :mod:`warehouse.queries`.

Same conventions as ``warehouse.queries``: a :class:`~warehouse.reader.Reader`
and typed arguments in, a pandas DataFrame out; money and seconds are
``decimal.Decimal``; days are UTC days; aggregates read the ``cdrs_daily``
rollup whenever the filter allows (``aggregate_source``). Identifiers come
only from the whitelists below, never from the caller's text.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from warehouse import export
from warehouse.filters import ALL_CALLS, CallFilter, scope_conditions, utc_start, where, where_clause
from warehouse.reader import Reader
from warehouse.schema import quote
from warehouse.sources import aggregate_source, causes_source, recordings_source, user_spend_source

# Dimension name -> column. The rollup has every one of them except users.
SPEND_DIMENSIONS = {"region": "region", "line": "line", "direction": "direction", "portal": "portal_id",
                    "currency": "currency", "status": "status"}
RECORDING_DIMENSIONS = {"portal": "portal_id", "line": "line", "user": "user_id"}
VALUE_DIMENSIONS = {"portal": "portal_id", "line": "line", "direction": "direction", "status": "status",
                    "region": "region", "controller": "controller", "user": "user_id"}


def _frame(reader: Reader, sql: str, params: list[Any]) -> pd.DataFrame:
    return reader.read(lambda con: con.sql(sql, params=params).to_arrow_table()).to_pandas()


def _column(mapping: dict[str, str], dimension: str) -> str:
    try:
        return quote(mapping[dimension])
    except KeyError:
        raise ValueError(f"dimension must be one of {sorted(mapping)}") from None


def daily_kpis(reader: Reader, flt: CallFilter = ALL_CALLS) -> pd.DataFrame:
    """Per day of ``flt.zone`` (hour if ``flt.hourly``): calls (incomplete excluded), answered,
    asr, acd_s, bypassed."""
    src = aggregate_source(flt, daily=True)
    n = src.calls
    complete, answered = f"{n} FILTER (status <> 'incomplete')", f"{n} FILTER (status = 'answered')"
    return _frame(reader, f"SELECT started_day AS day, CAST(coalesce({complete}, 0) AS BIGINT) AS calls, "
                          f"CAST(coalesce({answered}, 0) AS BIGINT) AS answered, "
                          f"coalesce({answered}, 0) / nullif({complete}, 0) AS asr, "
                          f"CAST(sum(talk_s) FILTER (status = 'answered') / nullif({answered}, 0) "
                          "AS DECIMAL(18,3)) AS acd_s, "
                          f"CAST(coalesce({n} FILTER (controller = 'bypassed'), 0) AS BIGINT) AS bypassed "
                          f"FROM {src.table} {src.where} {'AND' if src.where else 'WHERE'} "
                          "started_day IS NOT NULL GROUP BY 1 ORDER BY 1", src.params)


def spend_by(reader: Reader, dimension: str, flt: CallFilter = ALL_CALLS, *, top: int = 50) -> pd.DataFrame:
    """Per key of ``dimension`` and currency: calls, billed_s, cost; the biggest cost first."""
    column = _column(SPEND_DIMENSIONS, dimension)
    src = aggregate_source(flt)
    return _frame(reader, f"SELECT {column} AS key, currency, CAST({src.calls} AS BIGINT) AS calls, "
                          "CAST(sum(billed_s) AS BIGINT) AS billed_s, sum(cost) AS cost "
                          f"FROM {src.table} {src.where} GROUP BY 1, 2 "
                          "ORDER BY cost DESC NULLS LAST, key NULLS LAST, currency LIMIT ?",
                  src.params + [top])


# Breakdowns of spend_breakdown: name -> the dimensions it groups by (besides currency).
SPEND_SETS = {"day_region": ("started_day", "region"), "day_line": ("started_day", "line"),
              "day_direction": ("started_day", "direction"), "region": ("region",), "line": ("line",),
              "direction": ("direction",), "currency": ()}


def spend_breakdown(reader: Reader, flt: CallFilter = ALL_CALLS) -> pd.DataFrame:
    """Spend of the calls grouped several ways in one scan: set, day, key, currency, calls, billed_s, cost.

    ``set`` names the grouping (``SPEND_SETS``): ``day_region``, ``day_line``,
    ``day_direction`` (day and key = that dimension; the day-grouped sets have a row of
    no day for calls that never started), ``region``, ``line``, ``direction`` (key = that
    dimension) and ``currency`` (key = currency). Within a set, the biggest cost comes first.
    Days are of ``flt.zone`` (hours if ``flt.hourly``).
    """
    src = aggregate_source(flt, daily=True)
    sets = ", ".join("(" + ", ".join([*dims, "currency"]) + ")" for dims in SPEND_SETS.values())
    name = ("CASE WHEN grouping(started_day) = 0 THEN 'day_' || CASE WHEN grouping(region) = 0 THEN 'region' "
            "WHEN grouping(line) = 0 THEN 'line' ELSE 'direction' END WHEN grouping(region) = 0 THEN 'region' "
            "WHEN grouping(line) = 0 THEN 'line' WHEN grouping(direction) = 0 THEN 'direction' ELSE 'currency' END")
    key = ("CASE WHEN grouping(region) = 0 THEN region WHEN grouping(line) = 0 THEN line "
           "WHEN grouping(direction) = 0 THEN direction ELSE currency END")
    return _frame(reader, f'SELECT {name} AS "set", started_day AS day, {key} AS key, currency, '
                          f"CAST({src.calls} AS BIGINT) AS calls, CAST(sum(billed_s) AS BIGINT) AS billed_s, "
                          f"sum(cost) AS cost FROM {src.table} {src.where} GROUP BY GROUPING SETS ({sets}) "
                          'ORDER BY "set", cost DESC NULLS LAST, day, key NULLS LAST, currency NULLS LAST',
                  src.params)


def top_users_by_cost(reader: Reader, flt: CallFilter = ALL_CALLS, *, top: int = 15) -> pd.DataFrame:
    """The employees with the biggest spend: user_id, portal_id, currency, calls, billed_s, cost.

    An employee is a user of one portal (the contract does not make user ids unique
    across portals).
    """
    src = user_spend_source(flt)
    # Rollup rows may be negative (warehouse.views): a user whose calls all moved sums to none.
    return _frame(reader, "SELECT user_id, portal_id, currency, "
                          f"CAST({src.calls} AS BIGINT) AS calls, CAST(sum(billed_s) AS BIGINT) AS billed_s, "
                          f"sum(cost) AS cost FROM {src.table} {src.where} GROUP BY user_id, portal_id, currency "
                          f"HAVING {src.calls} > 0 ORDER BY cost DESC, user_id, portal_id LIMIT ?",
                  src.params + [top])


def recording_totals_by(reader: Reader, dimension: str, flt: CallFilter = ALL_CALLS, *,
                        top: int = 15) -> pd.DataFrame:
    """The biggest recording consumers per portal, line or user: key, recordings, bytes."""
    column = _column(RECORDING_DIMENSIONS, dimension)
    # cdrs_daily has no users; recordings_daily has them (and falls back to the recorded calls).
    # Rollup rows may be negative (warehouse.views): filter on measures only after summing.
    src = recordings_source(flt) if dimension == "user" else aggregate_source(flt, ("recording_bytes > 0",))
    return _frame(reader, f"SELECT {column} AS key, CAST({src.recordings} AS BIGINT) AS recordings, "
                          f"CAST(sum(recording_bytes) AS BIGINT) AS bytes FROM {src.table} {src.where} "
                          "GROUP BY 1 HAVING sum(recording_bytes) > 0 "
                          "ORDER BY bytes DESC, key NULLS LAST LIMIT ?", src.params + [top])


def alert_counts(reader: Reader, *, start: date | datetime | None = None,
                 end: date | datetime | None = None, portals: tuple[str, ...] = (),
                 by_day: bool = False, scope: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Alerts (latest state of each) with ts in [start, end), of some portals (and of ``scope``
    only, if given): type, state, [day,] count."""
    conditions, params = scope_conditions(scope)
    for bound, op in ((start, ">="), (end, "<")):
        if bound is not None:
            conditions.append(f"ts {op} ?")
            params.append(utc_start(bound))
    if portals:
        conditions.append(f"portal_id IN ({', '.join('?' * len(portals))})")
        params += list(portals)
    clause = where_clause(conditions)
    day = "CAST(ts AS DATE) AS day, " if by_day else ""
    return _frame(reader, f"SELECT type, state, {day}count(*) AS count FROM alerts {clause} "
                          "GROUP BY ALL ORDER BY ALL", params)


def refused_counts(reader: Reader, *, start: date | datetime | None = None,
                   end: date | datetime | None = None) -> pd.DataFrame:
    """Messages refused in [start, end), by reason: reason, count, the most frequent first.

    The worker's DLQ (call events) by its reason; the sink's ``rejects`` (CDRs, alerts or DLQ
    records it would not store) as ``<topic> <reason>``. Times: each message's Kafka time.
    """
    conditions, params = [], []
    for bound, op in ((start, ">="), (end, "<")):
        if bound is not None:
            conditions.append(f"ts {op} ?")
            params.append(utc_start(bound))
    clause = where_clause(conditions)
    return _frame(reader, f"SELECT reason, count(*) AS count FROM dlq {clause} GROUP BY 1 UNION ALL "
                          "SELECT topic || ' ' || coalesce(reason, 'unreadable'), count(*) "
                          f"FROM rejects {clause} GROUP BY 1 ORDER BY count DESC, reason", params + params)


def dimension_values(reader: Reader, dimension: str, *, search: str | None = None,
                     limit: int = 50, scope: tuple[str, ...] | None = None) -> list[str]:
    """Distinct non-null values of a filter dimension (containing ``search``) in the calls of
    ``scope``'s portals (None: all), sorted."""
    column = _column(VALUE_DIMENSIONS, dimension)
    table = "cdrs" if dimension == "user" else "cdrs_daily"
    scoped, params = scope_conditions(scope)
    condition = " AND ".join([f"{column} IS NOT NULL", *scoped])
    if search:
        condition += f" AND contains(lower({column}), ?)"
        params.append(search.lower())
    sql = (f"SELECT {column} FROM {table} WHERE {condition} GROUP BY 1 "
           f"HAVING {'count(*)' if table == 'cdrs' else 'sum(calls)'} > 0 ORDER BY 1 LIMIT ?")
    rows = reader.read(lambda con: con.execute(sql, params + [limit]).fetchall())
    return [value for (value,) in rows]


def billing_csv_query(flt: CallFilter, style: export.Dialect = export.CONTRACT) -> tuple[str, list[Any]]:
    """The billing CSV (contract columns and formats) of the calls matching ``flt``.

    The column expressions are :mod:`warehouse.export`'s own, so a dashboard
    download and ``callstream export`` print every value identically.
    """
    select = ", ".join(f"{style.expression(name)} AS {quote(name)}" for name in export.CSV_COLUMNS)
    clause, params = where(flt, "started_at IS NOT NULL")
    return f"SELECT {select} FROM cdrs {clause} ORDER BY started_at, call_id", params


def copy_billing_csv(con: Any, flt: CallFilter, target: Path, *, header: bool = True,
                     style: export.Dialect = export.CONTRACT) -> int:
    """COPY the billing CSV of ``flt`` to ``target`` with one cursor (RFC 4180, CRLF); the number of calls.

    ``header=False`` writes the rows only: the second and later chunks of a streamed download.
    """
    query, params = billing_csv_query(flt, style)
    options = style.options(header)
    return con.execute(f"COPY ({query}) TO ? ({options})", [*params, str(target)]).fetchall()[0][0]


def write_billing_csv(reader: Reader, flt: CallFilter, target: Path) -> int:
    """Write the billing CSV of ``flt`` to ``target`` (RFC 4180, CRLF); returns the number of calls."""
    return reader.read(lambda con: copy_billing_csv(con, flt, target))


def recording_bytes_total(reader: Reader, portals: tuple[str, ...] = (), *,
                          scope: tuple[str, ...] | None = None) -> int:
    """Disk used by every recording ever stored (of some portals, of ``scope``): the quota's numerator."""
    src = aggregate_source(CallFilter(portals=portals, scope=scope))
    sql = f"SELECT coalesce(sum(recording_bytes), 0) FROM {src.table} {src.where}"
    return int(reader.read(lambda con: con.execute(sql, src.params).fetchall())[0][0])


def spend_daily_by(reader: Reader, dimension: str, flt: CallFilter = ALL_CALLS) -> pd.DataFrame:
    """Spend per day of ``flt.zone`` (hour if ``flt.hourly``), key of ``dimension`` and currency:
    day, key, currency, calls, cost (the rollup for UTC days)."""
    column = _column(SPEND_DIMENSIONS, dimension)
    src = aggregate_source(flt, daily=True)
    return _frame(reader, f"SELECT started_day AS day, {column} AS key, currency, "
                          f"CAST({src.calls} AS BIGINT) AS calls, "
                          f"sum(cost) AS cost FROM {src.table} {src.where} {'AND' if src.where else 'WHERE'} "
                          "started_day IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", src.params)


def employee_spend_daily(reader: Reader, flt: CallFilter = ALL_CALLS, *, top: int = 8) -> pd.DataFrame:
    """Spend per day of the ``top`` employees by spend: day, key (``user · portal``), currency, cost."""
    src = user_spend_source(flt, daily=True)
    where_and = "AND" if src.where else "WHERE"
    sql = (f"WITH t AS (SELECT user_id, portal_id FROM {src.table} {src.where} GROUP BY 1, 2 "
           "HAVING sum(cost) > 0 ORDER BY sum(cost) DESC, 1, 2 LIMIT ?) "
           "SELECT started_day AS day, user_id || ' · ' || portal_id AS key, currency, sum(cost) AS cost "
           f"FROM {src.table} {src.where} {where_and} (user_id, portal_id) IN (SELECT (user_id, portal_id) FROM t) "
           "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    return _frame(reader, sql, src.params + [top] + src.params)


def hangup_causes(reader: Reader, flt: CallFilter = ALL_CALLS) -> pd.DataFrame:
    """Calls per hang-up cause (``call.ended``'s cause; none for calls without one): key, calls."""
    src = causes_source(flt)
    return _frame(reader, f"SELECT hangup_cause AS key, CAST({src.calls} AS BIGINT) AS calls "
                          f"FROM {src.table} {src.where} GROUP BY 1 HAVING {src.calls} > 0 "
                          "ORDER BY calls DESC, key NULLS LAST LIMIT 20", src.params)


def missed_offers_by_user(reader: Reader, flt: CallFilter = ALL_CALLS, *, top: int = 15) -> pd.DataFrame:
    """Offers an employee let ring out (``call.offer_missed`` events) in the filter's time range and
    portals: user_id, portal_id, missed, the most first."""
    conditions, params = scope_conditions(flt.scope)
    for bound, op in ((flt.start, ">="), (flt.end, "<")):
        if bound is not None:
            conditions.append(f"ts {op} ?")
            params.append(utc_start(bound))
    if flt.portals:
        conditions.append(f"portal_id IN ({', '.join('?' * len(flt.portals))})")
        params += list(flt.portals)
    clause = where_clause(["type = 'call.offer_missed'", *conditions])
    return _frame(reader, "SELECT json_extract_string(data, '$.user_id') AS user_id, portal_id, "
                          f"count(*) AS missed FROM events {clause} GROUP BY 1, 2 "
                          "ORDER BY missed DESC, user_id, portal_id LIMIT ?", params + [top])
