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

from datetime import date, datetime, timedelta, timezone
from typing import Any

import pandas as pd

from warehouse.filters import ALL_CALLS, CallFilter, order_by, utc_start, where
from warehouse.reader import Reader

DETAIL_COLUMNS = ('call_id, portal_id, started_at, answered_at, ended_at, direction, line, "from", "to", '
                  "line_number, shown_number, user_id, region, status, hangup_cause, talk_s, "
                  "duration_s, billed_s, rate_per_min, cost, currency, controller, controller_result, "
                  "recording_bytes, recording_urls, version")
RECORDING_DIMENSIONS = {"portal": "portal_id", "user": "user_id"}


def _frame(reader: Reader, sql: str, params: list[Any]) -> pd.DataFrame:
    with reader.cursor() as con:
        return con.sql(sql, params=params).to_arrow_table().to_pandas()


def _rows(reader: Reader, sql: str, params: list[Any]) -> list[tuple]:
    with reader.cursor() as con:
        return con.execute(sql, params).fetchall()


def call_detail(reader: Reader, flt: CallFilter = ALL_CALLS, *, sort: str = "started_at",
                descending: bool = True, page: int = 0, page_size: int = 50) -> pd.DataFrame:
    """One page of calls (``DETAIL_COLUMNS``), sorted by a whitelisted column, then call_id."""
    if page < 0 or not 1 <= page_size <= 10_000:
        raise ValueError("page must be >= 0 and page_size between 1 and 10000")
    order = order_by(sort, descending)
    if sort == "started_at" and descending and not (flt.number or flt.users):
        # Newest first (the default page): try the last day, week, two months before scanning
        # everything. A window that fills the page holds exactly the page the full query would
        # give, because every call outside it started earlier than every call inside it.
        # (Not for needle-in-a-haystack filters, whose windows would rarely fill a page.)
        for lower in _windows(reader, flt):
            frame = _page(reader, flt.replace(start=lower), order, page, page_size)
            if len(frame) == page_size:
                return frame
    return _page(reader, flt, order, page, page_size)


def _page(reader: Reader, flt: CallFilter, order: str, page: int, page_size: int) -> pd.DataFrame:
    clause, params = where(flt)
    sql = f"SELECT {DETAIL_COLUMNS} FROM cdrs {clause} {order} LIMIT ? OFFSET ?"
    return _frame(reader, sql, params + [page_size, page * page_size])


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
    clause, params = where(flt)
    return _rows(reader, f"SELECT count(*) FROM cdrs {clause}", params)[0][0]


def cdr_by_id(reader: Reader, call_id: str) -> dict[str, Any] | None:
    """The latest CDR of one call as a dict of typed values (all warehouse columns), or None."""
    with reader.cursor() as con:
        rows = con.sql("SELECT * FROM cdrs WHERE call_id = ?", params=[call_id]).to_arrow_table()
    return rows.to_pylist()[0] if rows.num_rows else None


def call_timeline(reader: Reader, call_id: str) -> pd.DataFrame:
    """The distinct valid events of one call by time: ts, type, source, node, event_id, data (JSON)."""
    return _frame(reader, "SELECT ts, type, source, node, event_id, data FROM events "
                          "WHERE call_id = ? ORDER BY ts, event_id", [call_id])


def spend_by_region_day_line(reader: Reader, flt: CallFilter = ALL_CALLS) -> pd.DataFrame:
    """Per UTC day, region, line and currency: calls, billed_s and cost (sums)."""
    clause, params = where(flt)
    return _frame(reader, "SELECT started_day AS day, region, line, currency, count(*) AS calls, "
                          "sum(billed_s) AS billed_s, sum(cost) AS cost "
                          f"FROM cdrs {clause} GROUP BY ALL ORDER BY day, region, line, currency",
                  params)


def _bytes_before(flt: CallFilter, group: str | None) -> tuple[str, list[Any]]:
    """SQL of recording bytes stored before ``flt.start`` (per group), for cumulative sums."""
    if flt.start is None:
        return "", []
    before, params = where(flt.replace(start=None, end=flt.start))
    key = f"{group} AS key, " if group else ""
    return f"SELECT {key}sum(recording_bytes) AS bytes FROM cdrs {before}" + (
        " GROUP BY 1" if group else ""), params


def recording_bytes_daily(reader: Reader, flt: CallFilter = ALL_CALLS) -> pd.DataFrame:
    """Per UTC day: recordings, bytes, and cumulative_bytes (storage used at the day's end)."""
    clause, params = where(flt, "recording_bytes > 0")
    base_sql, base_params = _bytes_before(flt, None)
    base = f"(SELECT coalesce(bytes, 0) FROM ({base_sql}))" if base_sql else "0"
    sql = ("SELECT day, recordings, bytes, "
           f"CAST({base} + sum(bytes) OVER (ORDER BY day) AS BIGINT) AS cumulative_bytes FROM ("
           "SELECT started_day AS day, count(*) AS recordings, sum(recording_bytes) AS bytes "
           f"FROM cdrs {clause} GROUP BY 1) ORDER BY day")
    return _frame(reader, sql, base_params + params)


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
    clause, params = where(flt, "recording_bytes > 0")
    base_sql, base_params = _bytes_before(flt, column)
    base_sql = base_sql or "SELECT NULL::VARCHAR AS key, 0 AS bytes WHERE false"
    sql = (f"WITH d AS (SELECT started_day AS day, {column} AS key, sum(recording_bytes) AS bytes "
           f"FROM cdrs {clause} GROUP BY 1, 2), "
           "t AS (SELECT key FROM d GROUP BY key ORDER BY sum(bytes) DESC, key LIMIT ?) "
           "SELECT d.day, d.key, d.bytes, CAST(coalesce(b.bytes, 0) + sum(d.bytes) OVER "
           "(PARTITION BY d.key ORDER BY d.day) AS BIGINT) AS cumulative_bytes "
           f"FROM d SEMI JOIN t USING (key) LEFT JOIN ({base_sql}) b USING (key) ORDER BY d.day, d.key")
    return _frame(reader, sql, params + [top] + base_params)


def bypass_rate_by_portal(reader: Reader, flt: CallFilter = ALL_CALLS) -> pd.DataFrame:
    """Per portal: calls, checked, bypassed, none (controller verdicts) and bypass_rate (0..1)."""
    clause, params = where(flt)
    return _frame(reader, "SELECT portal_id, count(*) AS calls, "
                          "count(*) FILTER (controller = 'checked') AS checked, "
                          "count(*) FILTER (controller = 'bypassed') AS bypassed, "
                          "count(*) FILTER (controller = 'none') AS \"none\", "
                          "count(*) FILTER (controller = 'bypassed') / count(*) AS bypass_rate "
                          f"FROM cdrs {clause} GROUP BY 1 ORDER BY bypass_rate DESC, portal_id",
                  params)


def asr_acd_by_line(reader: Reader, flt: CallFilter = ALL_CALLS) -> pd.DataFrame:
    """Per line: calls (incomplete ones excluded), answered, asr (answered/calls), acd_s (mean talk)."""
    clause, params = where(flt, "status <> 'incomplete'")
    return _frame(reader, "SELECT line, count(*) AS calls, "
                          "count(*) FILTER (status = 'answered') AS answered, "
                          "count(*) FILTER (status = 'answered') / count(*) AS asr, "
                          "CAST(avg(talk_s) FILTER (status = 'answered') AS DECIMAL(18,3)) AS acd_s "
                          f"FROM cdrs {clause} GROUP BY 1 ORDER BY line", params)


def alerts(reader: Reader, *, start: date | datetime | None = None, end: date | datetime | None = None,
           portals: tuple[str, ...] = (), types: tuple[str, ...] = (), state: str | None = None,
           page: int = 0, page_size: int = 50) -> pd.DataFrame:
    """Alerts (latest state of each alert_id) with ts in [start, end), newest first."""
    conditions, params = [], []
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
    clause = "WHERE " + " AND ".join(conditions) if conditions else ""
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
    clause = "WHERE " + " AND ".join(conditions) if conditions else ""
    day, by = ("CAST(ts AS DATE) AS day, ", "day, ") if by_day else ("", "")
    return _frame(reader, f"SELECT reason, {day}count(*) AS count FROM dlq {clause} "
                          f"GROUP BY ALL ORDER BY {by}count DESC, reason", params)


def dlq_examples(reader: Reader, reason: str, limit: int = 5) -> pd.DataFrame:
    """The newest rejected events of one reason: ts, error, src_topic/partition/offset, raw_excerpt."""
    return _frame(reader, "SELECT ts, error, src_topic, src_partition, src_offset, raw_excerpt FROM dlq "
                          "WHERE reason = ? ORDER BY ts DESC, src_offset DESC LIMIT ?", [reason, limit])


def freshness(reader: Reader, now: datetime | None = None) -> dict[str, Any]:
    """Last publish time, newest data time per table, and their ages in seconds (None if empty)."""
    reader.refresh()
    manifest = reader.manifest
    now_us = int((now or datetime.now(timezone.utc)).timestamp() * 1_000_000)
    result: dict[str, Any] = {"published_at": None, "age_s": None, "newest": {}, "seq": None}
    if manifest is None or manifest.published_at_us is None:
        return result
    result.update(seq=manifest.seq, published_at=_dt(manifest.published_at_us),
                  age_s=(now_us - manifest.published_at_us) / 1e6)
    for table, files in manifest.files.items():
        stamps = [f.ts_max_us for f in files if f.ts_max_us is not None]
        result["newest"][table] = _dt(max(stamps)) if stamps else None
    return result


def _dt(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)


def kpis(reader: Reader, flt: CallFilter = ALL_CALLS, *, now: datetime | None = None) -> dict[str, Any]:
    """Headline figures: calls, answered, asr, acd_s, bypassed (in ``flt``); spend_today and
    spend_month ({currency: Decimal}, UTC, ``flt`` without its dates); recording_bytes (all time)."""
    now = now or datetime.now(timezone.utc)
    today = now.astimezone(timezone.utc).date()
    clause, params = where(flt)
    calls, answered, acd, bypassed = _rows(reader, (
        "SELECT count(*) FILTER (status <> 'incomplete'), count(*) FILTER (status = 'answered'), "
        "CAST(avg(talk_s) FILTER (status = 'answered') AS DECIMAL(18,3)), "
        f"count(*) FILTER (controller = 'bypassed') FROM cdrs {clause}"), params)[0]
    undated = flt.replace(start=today.replace(day=1), end=today + timedelta(days=1))
    month_clause, month_params = where(undated)
    spend = _rows(reader, ("SELECT currency, sum(cost) FILTER (started_day = ?), sum(cost) "
                           f"FROM cdrs {month_clause} GROUP BY 1 ORDER BY 1"), [today] + month_params)
    all_time, all_params = where(flt.replace(start=None, end=None))
    stored = _rows(reader, f"SELECT coalesce(sum(recording_bytes), 0) FROM cdrs {all_time}", all_params)
    return {"calls": calls, "answered": answered, "asr": answered / calls if calls else None,
            "acd_s": acd, "bypassed": bypassed,
            "spend_today": {c: d for c, d, _ in spend if c is not None and d is not None},
            "spend_month": {c: m for c, _, m in spend if c is not None and m is not None},
            "recording_bytes": int(stored[0][0])}
