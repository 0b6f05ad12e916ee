"""The call index: ``call_id -> started_day`` of every base ``cdrs`` file, sorted by call_id.

Base ``cdrs`` files are sorted by ``started_at`` (what every page filters on),
so a lookup by ``call_id`` used to read the call_id column of every month.
With each base file the writer stores this small companion file (same
partition label, written and retired with it, like the rollups): sorted by
``call_id`` in small row groups, a lookup reads one row group per month
(min/max statistics prune the rest), and the ``started_day`` it finds prunes
the base file itself to a row group or two. About 7 bytes per call (the id
itself; a month's days compress to nothing): 100 MB for 10M calls, beside
556 MB of base files, for lookups of ~50 ms instead of a ~450 ms scan.

Partitions written before the index existed have no index file; the view
(views.py) reads their pairs from the base file instead, so lookups stay exact
until the next compaction writes one.
"""

from __future__ import annotations

from warehouse.schema import TableSpec

NAME = "cdrs_ids"
SPEC = TableSpec(
    NAME, (("call_id", "VARCHAR"), ("started_day", "DATE")), ("call_id",),
    winner="", newest_wins=False, partition="coalesce(strftime(started_day, '%Y-%m'), 'none')",
    sort="call_id", time_column="CAST(started_day AS TIMESTAMPTZ)",
    # Small row groups: a lookup decodes one group per month, 8,192 ids rather than 122,880.
    row_group_size=8192,
)


def select(source: str) -> str:
    """The index rows of the cdrs rows of ``source`` (a table, view or subquery)."""
    return f"SELECT call_id, started_day FROM {source}"
