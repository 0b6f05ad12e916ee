"""Named, parameterised queries behind notify's threshold rules (``queries.py`` style).

Each takes a :class:`~warehouse.reader.Reader` and typed arguments and
returns plain rows; the rules themselves (:mod:`notify.thresholds`) are pure
functions of those rows. Hours are UTC (the warehouse's session time zone).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from warehouse.reader import Reader


def _rows(reader: Reader, sql: str, params: list) -> list[tuple]:
    return reader.read(lambda con: con.execute(sql, params).fetchall())


def _ranges(hours: Sequence[tuple[datetime, datetime]]) -> tuple[str, list]:
    clause = " OR ".join("(started_at >= ? AND started_at < ?)" for _ in hours)
    return f"({clause})", [moment for span in hours for moment in span]


def hourly_spend(reader: Reader,
                 hours: Sequence[tuple[datetime, datetime]]) -> list[tuple[str, str, datetime, Decimal]]:
    """(portal_id, currency, hour start, cost) of the calls that started in the given [start, end) spans."""
    if not hours:
        return []
    clause, params = _ranges(hours)
    return _rows(reader, "SELECT portal_id, currency, date_trunc('hour', started_at) AS hour, sum(cost) "
                         f"FROM cdrs WHERE {clause} AND currency IS NOT NULL GROUP BY ALL ORDER BY ALL", params)


def hourly_answers(reader: Reader, start: datetime, end: datetime) -> list[tuple[str, datetime, int, int]]:
    """(portal_id, hour start, finished calls, answered calls) of calls that started in [start, end)."""
    return _rows(reader, "SELECT portal_id, date_trunc('hour', started_at) AS hour, "
                         "count(*) FILTER (status <> 'incomplete'), count(*) FILTER (status = 'answered') "
                         "FROM cdrs WHERE started_at >= ? AND started_at < ? GROUP BY ALL ORDER BY ALL",
                 [start, end])


def recording_storage_daily(reader: Reader) -> list[tuple[object, int]]:
    """(UTC day, recording bytes stored by the end of that day), every day with recordings (from the rollup)."""
    from warehouse.queries import recording_bytes_daily

    frame = recording_bytes_daily(reader)
    return [(day, int(total)) for day, total in zip(frame["day"], frame["cumulative_bytes"])]


def bypassed_calls(reader: Reader, portal_id: str, start: datetime, end: datetime | None) -> int:
    """controller_bypassed alerts (not withdrawn) of a portal with ts in [start, end] (end None: no bound)."""
    sql = ("SELECT count(*) FROM alerts WHERE type = 'controller_bypassed' AND portal_id = ? AND ts >= ? "
           "AND state IS DISTINCT FROM 'retracted'")
    params: list = [portal_id, start]
    if end is not None:
        sql += " AND ts <= ?"
        params.append(end)
    return int(_rows(reader, sql, params)[0][0])
