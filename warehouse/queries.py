"""Named, parameterised queries shared by the dashboard and the export.

Every function takes a :class:`~warehouse.reader.Reader` (any number of them,
in any process, while the sink writes) and typed arguments, and returns a
pandas DataFrame (or a dict / scalar where noted). Money and seconds columns
hold ``decimal.Decimal`` (object dtype), never floats; times are UTC
(``datetime64[us, UTC]``); days are ``datetime.date`` (UTC days).

Filters are a :class:`~warehouse.filters.CallFilter`; "the calls" below means
the latest version of every call that matches it. Names and columns are a
stable interface: the dashboard builds its pages on them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from warehouse.filters import (
    ALL_CALLS,
    SORT_COLUMNS,
    CallFilter,
    local_start,
    number_needle,
    order_by,
    scope_conditions,
    utc_start,
    where,
    where_clause,
)
from warehouse.layout import table_of
from warehouse.lookup import call_by_id
from warehouse.reader import Reader
from warehouse.sources import aggregate_source, recorded_count_source, recordings_source

DETAIL_COLUMNS = ('call_id, portal_id, started_at, answered_at, ended_at, direction, line, "from", "to", '
                  "line_number, shown_number, user_id, region, status, hangup_cause, talk_s, "
                  "duration_s, billed_s, rate_per_min, cost, currency, controller, controller_result, "
                  "recording_bytes, recording_urls, version")
RECORDING_DIMENSIONS = {"portal": "portal_id", "user": "user_id"}
# A number search of at most this many characters is treated like no filter for the newest-first
# windows: 4 random digits occur in ~0.06% of numbers, a few dozen calls a day at 10M a year.
DENSE_NEEDLE_CHARS = 4


def _frame(reader: Reader, sql: str, params: list[Any]) -> pd.DataFrame:
    # Through Reader.read: a file found damaged mid-query is left out and the query asked again.
    return reader.read(lambda con: con.sql(sql, params=params).to_arrow_table()).to_pandas()


def _rows(reader: Reader, sql: str, params: list[Any]) -> list[tuple]:
    return reader.read(lambda con: con.execute(sql, params).fetchall())


def call_detail(reader: Reader, flt: CallFilter = ALL_CALLS, *, sort: str = "started_at",
                descending: bool = True, page: int = 0, page_size: int = 50) -> pd.DataFrame:
    """One page of calls (``DETAIL_COLUMNS``), sorted by a whitelisted column, then call_id."""
    if page < 0 or not 1 <= page_size <= 10_000:
        raise ValueError("page must be >= 0 and page_size between 1 and 10000")
    order = order_by(sort, descending)
    if sort == "started_at" and descending and not flt.users and _dense(flt.number):
        # Newest first (the default page): try the last day, week, two months before scanning
        # everything. A window that fills the page holds exactly the page the full query would
        # give, because every call outside it started earlier than every call inside it.
        # (Not for needle-in-a-haystack filters — one user, a whole number — whose windows
        # would rarely fill a page; a few digits match every day.)
        for lower in _windows(reader, flt):
            frame = _page(reader, flt.replace(start=lower), order, page, page_size)
            if len(frame) == page_size:
                return frame
    elif sort != "started_at":
        return _page(reader, flt, order, page, page_size, _threshold(reader, flt, sort, descending,
                                                                      (page + 1) * page_size))
    return _page(reader, flt, order, page, page_size)


def _threshold(reader: Reader, flt: CallFilter, sort: str, descending: bool, rows: int) -> tuple[str, list[Any]]:
    """A condition on the sort column that every call of the first ``rows`` in that order meets.

    The ``rows``-th call's value, found by reading that one column (and the filter's): the calls
    before it in the order (descending: values at least as big; ascending: at most) are all that
    the full page query then has to sort with every column (halves a sort by cost over a year).
    No condition when fewer calls than ``rows`` have a value (nulls come last in either order).
    """
    column = SORT_COLUMNS[sort]
    clause, params = where(flt, f"{column} IS NOT NULL")
    found = _rows(reader, f"SELECT {column} FROM cdrs {clause} ORDER BY {column} {'DESC' if descending else 'ASC'} "
                          "LIMIT 1 OFFSET ?", params + [rows - 1])
    if not found:
        return "", []
    return f"{column} {'>=' if descending else '<='} ?", [found[0][0]]


def _dense(number: str | None) -> bool:
    """No number search, or one short enough to match calls every day (a few digits)."""
    return not number or len(number_needle(number)) <= DENSE_NEEDLE_CHARS


def _page(reader: Reader, flt: CallFilter, order: str, page: int, page_size: int,
          bound: tuple[str, list[Any]] = ("", [])) -> pd.DataFrame:
    clause, params = where(flt, *([bound[0]] if bound[0] else []))
    sql = f"SELECT {DETAIL_COLUMNS} FROM cdrs {clause} {order} LIMIT ? OFFSET ?"
    return _frame(reader, sql, params + bound[1] + [page_size, page * page_size])


def _windows(reader: Reader, flt: CallFilter) -> list[datetime]:
    """Lower bounds of growing started_at windows ending at the newest data (or the filter's end)."""
    reader.refresh()
    newest = [f.ts_max_us for f in (reader.manifest.table_files("cdrs") if reader.manifest else ())
              if f.ts_max_us is not None]
    if not newest:
        return []
    anchor = _dt(max(newest))
    if flt.end is not None:
        anchor = min(anchor, utc_start(flt.end))
    start = utc_start(flt.start) if flt.start is not None else None
    lowers = [anchor - timedelta(days=days) for days in (1, 8, 64)]
    return [lower for lower in lowers if start is None or lower > start]


def call_count(reader: Reader, flt: CallFilter = ALL_CALLS) -> int:
    """Number of calls matching the filter (for paging)."""
    src = recorded_count_source(flt) or aggregate_source(flt)
    return int(_rows(reader, f"SELECT coalesce({src.calls}, 0) FROM {src.table} {src.where}", src.params)[0][0])


def cdr_by_id(reader: Reader, call_id: str, *, scope: tuple[str, ...] | None = None) -> dict[str, Any] | None:
    """The latest CDR of one call as a dict of typed values (all warehouse columns), or None.

    Read through the call index, not a scan of every call_id (lookup.call_by_id). A call of
    a portal outside ``scope`` (the reader's portals; None: all) is None, as if absent.
    """
    cdr = reader.read(lambda con: call_by_id(con, call_id))
    if cdr is not None and scope is not None and cdr.get("portal_id") not in tuple(scope):
        return None
    return cdr


def call_timeline(reader: Reader, call_id: str, *, scope: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The distinct valid events of one call by time: ts, type, source, node, event_id, data (JSON).

    With a ``scope``, only events of those portals (an event names its portal).
    """
    conditions, params = scope_conditions(scope)
    clause = "".join(f" AND {c}" for c in conditions)
    return _frame(reader, "SELECT ts, type, source, node, event_id, data FROM events "
                          f"WHERE call_id = ?{clause} ORDER BY ts, event_id", [call_id] + params)


def spend_by_region_day_line(reader: Reader, flt: CallFilter = ALL_CALLS) -> pd.DataFrame:
    """Per day (of ``flt.zone``; hours if ``flt.hourly``), region, line and currency: calls,
    billed_s and cost (sums)."""
    src = aggregate_source(flt, daily=True)
    return _frame(reader, f"SELECT started_day AS day, region, line, currency, "
                          f"CAST({src.calls} AS BIGINT) AS calls, CAST(sum(billed_s) AS BIGINT) AS billed_s, "
                          f"sum(cost) AS cost FROM {src.table} {src.where} "
                          "GROUP BY ALL ORDER BY day, region, line, currency", src.params)


def _stored_before(flt: CallFilter, key: str | None) -> tuple[str, list[Any]]:
    """Recording bytes stored before ``flt.start`` (per ``key`` column), for cumulative sums."""
    if flt.start is None:
        select = "NULL::VARCHAR AS key, " if key else ""
        return f"SELECT {select}0 AS bytes WHERE false", []
    earlier = flt.replace(start=None, end=flt.start)
    src = recordings_source(earlier) if key == "user_id" else aggregate_source(earlier)
    select, group = (f"{key} AS key, ", " GROUP BY 1") if key else ("", "")
    return f"SELECT {select}sum(recording_bytes) AS bytes FROM {src.table} {src.where}{group}", src.params


def recording_bytes_daily(reader: Reader, flt: CallFilter = ALL_CALLS) -> pd.DataFrame:
    """Per day (of ``flt.zone``): recordings, bytes, and cumulative_bytes (storage used at the day's end)."""
    src = aggregate_source(flt, ("recording_bytes > 0",), daily=True)
    before, before_params = _stored_before(flt, None)
    sql = ("SELECT day, recordings, bytes, CAST(coalesce((SELECT sum(bytes) FROM (" + before + ")), 0) "
           "+ sum(bytes) OVER (ORDER BY day) AS BIGINT) AS cumulative_bytes FROM ("
           f"SELECT started_day AS day, CAST({src.recordings} AS BIGINT) AS recordings, "
           f"CAST(sum(recording_bytes) AS BIGINT) AS bytes FROM {src.table} {src.where} GROUP BY 1 "
           f"HAVING {src.recordings} > 0) ORDER BY day")
    return _frame(reader, sql, before_params + src.params)


def recording_bytes_by(reader: Reader, dimension: str, flt: CallFilter = ALL_CALLS, *,
                       top: int = 20) -> pd.DataFrame:
    """Per UTC day and portal or user (``dimension``): bytes and cumulative_bytes.

    Only the ``top`` keys by bytes in the range are returned (``portal``: ``key`` is
    portal_id; ``user``: user_id).
    """
    try:
        column = RECORDING_DIMENSIONS[dimension]
    except KeyError:
        raise ValueError(f"dimension must be one of {sorted(RECORDING_DIMENSIONS)}") from None
    src = recordings_source(flt, daily=True) if dimension == "user" else \
        aggregate_source(flt, ("recording_bytes > 0",), daily=True)
    before, before_params = _stored_before(flt, column)
    # The top keys first (few groups), then the daily series of those keys only.
    sql = (f"WITH t AS (SELECT {column} AS key FROM {src.table} {src.where} GROUP BY 1 "
           "HAVING sum(recording_bytes) > 0 ORDER BY sum(recording_bytes) DESC, key LIMIT ?), "
           f"d AS (SELECT started_day AS day, {column} AS key, CAST(sum(recording_bytes) AS BIGINT) AS bytes "
           f"FROM {src.table} {src.where} {'AND' if src.where else 'WHERE'} {column} IN (SELECT key FROM t) "
           "GROUP BY 1, 2 HAVING sum(recording_bytes) > 0) "
           "SELECT d.day, d.key, d.bytes, CAST(coalesce(b.bytes, 0) + sum(d.bytes) OVER "
           "(PARTITION BY d.key ORDER BY d.day) AS BIGINT) AS cumulative_bytes "
           f"FROM d LEFT JOIN ({before}) b USING (key) ORDER BY d.day, d.key")
    return _frame(reader, sql, src.params + [top] + src.params + before_params)


def bypass_rate_by_portal(reader: Reader, flt: CallFilter = ALL_CALLS) -> pd.DataFrame:
    """Per portal: calls, checked, bypassed, none (controller verdicts) and bypass_rate (0..1)."""
    src = aggregate_source(flt)
    n = src.calls
    verdict = "CAST(coalesce({n} FILTER (controller = '{v}'), 0) AS BIGINT)".format
    return _frame(reader, f"SELECT portal_id, CAST({n} AS BIGINT) AS calls, "
                          f"{verdict(n=n, v='checked')} AS checked, {verdict(n=n, v='bypassed')} AS bypassed, "
                          f"{verdict(n=n, v='none')} AS \"none\", "
                          f"{verdict(n=n, v='bypassed')} / {n} AS bypass_rate "
                          f"FROM {src.table} {src.where} GROUP BY 1 ORDER BY bypass_rate DESC, portal_id",
                  src.params)


def asr_acd_by_line(reader: Reader, flt: CallFilter = ALL_CALLS) -> pd.DataFrame:
    """Per line: calls (incomplete ones excluded), answered, asr (answered/calls), acd_s (mean talk)."""
    src = aggregate_source(flt, dimension_extra=("status <> 'incomplete'",))
    n, answered = src.calls, f"coalesce({src.calls} FILTER (status = 'answered'), 0)"
    return _frame(reader, f"SELECT line, CAST({n} AS BIGINT) AS calls, CAST({answered} AS BIGINT) AS answered, "
                          f"{answered} / {n} AS asr, CAST(sum(talk_s) FILTER (status = 'answered') "
                          f"/ nullif({answered}, 0) AS DECIMAL(18,3)) AS acd_s "
                          f"FROM {src.table} {src.where} GROUP BY 1 ORDER BY line", src.params)


def alerts(reader: Reader, *, start: date | datetime | None = None, end: date | datetime | None = None,
           portals: tuple[str, ...] = (), types: tuple[str, ...] = (), state: str | None = None,
           live_only: bool = False, page: int = 0, page_size: int = 50,
           scope: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Alerts (latest state of each alert_id) with ts in [start, end), newest first.

    ``live_only`` leaves out withdrawn alerts (latest state ``retracted``); ``scope``: only
    alerts of those portals (None: all).
    """
    conditions, params = scope_conditions(scope)
    if start is not None:
        conditions.append("ts >= ?")
        params.append(utc_start(start))
    if end is not None:
        conditions.append("ts < ?")
        params.append(utc_start(end))
    for values, column in ((portals, "portal_id"), (types, "type")):
        if values:
            conditions.append(f"{column} IN ({', '.join('?' * len(values))})")
            params += list(values)
    if state is not None:
        conditions.append("state = ?")
        params.append(state)
    if live_only:
        conditions.append("state IS DISTINCT FROM 'retracted'")
    clause = where_clause(conditions)
    return _frame(reader, "SELECT alert_id, type, portal_id, call_id, ts, state, detail FROM alerts "
                          f"{clause} ORDER BY ts DESC, alert_id LIMIT ? OFFSET ?",
                  params + [page_size, page * page_size])


def dlq_counts(reader: Reader, *, start: date | datetime | None = None,
               end: date | datetime | None = None, by_day: bool = False) -> pd.DataFrame:
    """Rejected events by reason (and UTC day of rejection if ``by_day``): reason, [day,] count."""
    conditions, params = [], []
    if start is not None:
        conditions.append("ts >= ?")
        params.append(utc_start(start))
    if end is not None:
        conditions.append("ts < ?")
        params.append(utc_start(end))
    clause = where_clause(conditions)
    day, by = ("CAST(ts AS DATE) AS day, ", "day, ") if by_day else ("", "")
    return _frame(reader, f"SELECT reason, {day}count(*) AS count FROM dlq {clause} "
                          f"GROUP BY ALL ORDER BY {by}count DESC, reason", params)


def dlq_examples(reader: Reader, reason: str, limit: int = 5) -> pd.DataFrame:
    """The newest rejected events of one reason: ts, error, src_topic/partition/offset, raw_excerpt."""
    return _frame(reader, "SELECT ts, error, src_topic, src_partition, src_offset, raw_excerpt FROM dlq "
                          "WHERE reason = ? ORDER BY ts DESC, src_offset DESC LIMIT ?", [reason, limit])


def missing_data(reader: Reader) -> list[dict[str, Any]]:
    """Files whose rows no query sees: quarantined by the writer, or left out by this reader as damaged.

    One dict per file: path, state (``quarantined`` or ``unreadable``), table, kind, partition,
    rows (as the manifest recorded them), labels (partitions of a delta's rows), reason.
    """
    manifest = reader.manifest
    if manifest is None:
        return []
    out = [{"path": q.path, "state": "quarantined", "table": q.table, "kind": q.kind, "partition": q.partition,
            "rows": q.rows, "labels": q.labels, "reason": q.reason} for q in manifest.quarantined]
    listed = {f.path: f for f in manifest.all_files()}
    for path, reason in sorted(reader.skipped.items()):
        f = listed.get(path)
        if f is not None:
            out.append({"path": path, "state": "unreadable", "table": table_of(path), "kind": f.kind,
                        "partition": f.partition, "rows": f.rows, "labels": f.labels, "reason": reason})
    return out


def freshness(reader: Reader, now: datetime | None = None) -> dict[str, Any]:
    """Last publish time, newest data time per table, and their ages in seconds (None if empty).

    ``incomplete`` lists the files whose rows are missing (:func:`missing_data`).
    """
    reader.refresh()
    manifest = reader.manifest
    now_us = int((now or datetime.now(UTC)).timestamp() * 1_000_000)
    result: dict[str, Any] = {"published_at": None, "age_s": None, "newest": {}, "seq": None,
                              "incomplete": missing_data(reader)}
    if manifest is None or manifest.published_at_us is None:
        return result
    result.update(seq=manifest.seq, published_at=_dt(manifest.published_at_us),
                  age_s=(now_us - manifest.published_at_us) / 1e6)
    for table, files in manifest.files.items():
        stamps = [f.ts_max_us for f in files if f.ts_max_us is not None]
        result["newest"][table] = _dt(max(stamps)) if stamps else None
    return result


def _dt(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def kpis(reader: Reader, flt: CallFilter = ALL_CALLS, *, now: datetime | None = None) -> dict[str, Any]:
    """Headline figures: calls, answered, asr, acd_s, bypassed (in ``flt``); spend_today and
    spend_month ({currency: Decimal}, days of ``flt.zone``, ``flt`` without its dates);
    recording_bytes (all time)."""
    from zoneinfo import ZoneInfo

    now = now or datetime.now(UTC)
    today = now.astimezone(ZoneInfo(flt.zone)).date()
    src = aggregate_source(flt)
    complete, answered, bypassed = "status <> 'incomplete'", "status = 'answered'", "controller = 'bypassed'"

    def count(condition: str) -> str:
        return f"CAST(coalesce({src.calls} FILTER ({condition}), 0) AS BIGINT)"

    calls, answered_calls, acd, bypassed_calls = _rows(reader, (
        f"SELECT {count(complete)}, {count(answered)}, CAST(sum(talk_s) FILTER ({answered}) "
        f"/ nullif({src.calls} FILTER ({answered}), 0) AS DECIMAL(18,3)), {count(bypassed)} "
        f"FROM {src.table} {src.where}"), src.params)[0]
    month = aggregate_source(flt.replace(start=local_start(today.replace(day=1), flt.zone),
                                         end=local_start(today + timedelta(days=1), flt.zone), hourly=False),
                             daily=True)
    spend = _rows(reader, ("SELECT currency, sum(cost) FILTER (started_day = ?), sum(cost) "
                           f"FROM {month.table} {month.where} GROUP BY 1 ORDER BY 1"), [today] + month.params)
    ever = aggregate_source(flt.replace(start=None, end=None))
    stored = _rows(reader, f"SELECT coalesce(sum(recording_bytes), 0) FROM {ever.table} {ever.where}",
                   ever.params)
    return {"calls": calls, "answered": answered_calls, "asr": answered_calls / calls if calls else None,
            "acd_s": acd, "bypassed": bypassed_calls,
            "spend_today": {c: d for c, d, _ in spend if c is not None and d is not None},
            "spend_month": {c: m for c, _, m in spend if c is not None and m is not None},
            "recording_bytes": int(stored[0][0])}


def spend_by_portal_region_month(reader: Reader, flt: CallFilter = ALL_CALLS) -> pd.DataFrame:
    """Per UTC month (``YYYY-MM``; null for calls without a start), portal, region and currency:
    calls, billed_s and cost (sums). External engines reading the Delta tables get the same
    (tests/integration/test_spark.py)."""
    src = aggregate_source(flt)
    # A group whose rollup pieces cancel out (a call that changed region) holds no call.
    return _frame(reader, f"SELECT strftime(started_day, '%Y-%m') AS month, portal_id, region, currency, "
                          f"CAST({src.calls} AS BIGINT) AS calls, CAST(sum(billed_s) AS BIGINT) AS billed_s, "
                          f"sum(cost) AS cost FROM {src.table} {src.where} GROUP BY ALL "
                          f"HAVING {src.calls} <> 0 ORDER BY month, portal_id, region, currency", src.params)


def calls_by_status(reader: Reader, flt: CallFilter = ALL_CALLS) -> pd.DataFrame:
    """Per status: calls."""
    src = aggregate_source(flt)
    return _frame(reader, f"SELECT status, CAST({src.calls} AS BIGINT) AS calls FROM {src.table} {src.where} "
                          f"GROUP BY 1 HAVING {src.calls} <> 0 ORDER BY status", src.params)
