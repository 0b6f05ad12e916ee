"""Call detail without scanning every call: pages in two steps, single calls by index.

**Pages.** One page of call detail in two steps: its keys from a few columns, then its rows.

Sorted by talk or cost over a month, a page used to decode every detail column
(26 of them) of every call in range — a million calls — to keep 50. Now:

1. *keys*: call_id and started_at of the page's calls, found by the filter and
   the sort over the few columns they need;
2. *rows*: the detail columns of exactly those calls, asked for by
   ``started_at IN (the page's starts)``. Base files are sorted by
   ``started_at`` in row groups of a few thousand calls (schema.py), so the
   row groups' min/max statistics skip every group that holds none of them.

The two statements may see two manifests (the sink publishes every half
second). The rows step repeats the filter and the sort, so when a call changed
in between its rows no longer match the keys, and the page is read again in
one step — never a wrong page.

**One call** (:func:`call_by_id`): a delta row, when there is one, is the newest
version (it shadows the base); otherwise the call index (call_index.py) gives
the call's ``started_day``, which prunes the base files — sorted by start — to
a row group or two.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def page_of_calls(con, columns: str, clause: str, params: list[Any], order: str,
                  offset: int, limit: int) -> pd.DataFrame:
    """``SELECT columns FROM cdrs clause order LIMIT limit OFFSET offset``, in two steps.

    ``columns`` must include call_id and started_at; ``clause``/``order`` come from
    filters.where / filters.order_by (parameterised, whitelisted).
    """
    keys = con.execute(f"SELECT call_id, started_at FROM cdrs {clause} {order} LIMIT ? OFFSET ?",
                       params + [limit, offset]).fetchall()
    if keys:
        rows = _rows_of(con, columns, clause, params, order, keys)
        if rows is not None:
            return rows
    return con.sql(f"SELECT {columns} FROM cdrs {clause} {order} LIMIT ? OFFSET ?",
                   params=params + [limit, offset]).to_arrow_table().to_pandas()


def _rows_of(con, columns: str, clause: str, params: list[Any], order: str,
             keys: list[tuple]) -> pd.DataFrame | None:
    """The rows of the calls ``keys`` (call_id, started_at) in page order; None if they moved."""
    ids = [call_id for call_id, _ in keys]
    starts = sorted({start for _, start in keys if start is not None})
    terms = [f"started_at IN ({', '.join('?' * len(starts))})"] if starts else []
    if any(start is None for _, start in keys):
        terms.append("started_at IS NULL")
    conditions = f"call_id IN ({', '.join('?' * len(ids))}) AND ({' OR '.join(terms)})"
    joined = f"{clause} AND {conditions}" if clause else f"WHERE {conditions}"
    table = con.sql(f"SELECT {columns} FROM cdrs {joined} {order}",
                    params=params + ids + starts).to_arrow_table()
    found = list(zip(table.column("call_id").to_pylist(), table.column("started_at").to_pylist()))
    return table.to_pandas() if found == keys else None


def call_by_id(con, call_id: str) -> dict[str, Any] | None:
    """The latest CDR of one call (every warehouse column), or None; see the module docstring."""
    rows = con.sql("SELECT * FROM cdrs__delta WHERE call_id = ?", params=[call_id]).to_arrow_table()
    if not rows.num_rows:
        days = [row[0] for row in con.execute(
            "SELECT DISTINCT started_day FROM cdrs_ids WHERE call_id = ?", [call_id]).fetchall()]
        if not days:
            return None
        # Several days only while a call that changed month awaits its major compaction.
        rows = con.sql("SELECT * FROM cdrs__base WHERE call_id = ? AND " + _day_in(days)
                       + " QUALIFY row_number() OVER (ORDER BY version DESC, kafka_offset DESC) = 1",
                       params=[call_id, *[d for d in days if d is not None]]).to_arrow_table()
    return rows.to_pylist()[0] if rows.num_rows else None


def _day_in(days: list) -> str:
    """``started_day`` equal to one of ``days`` (None: a call without a start), as parameters."""
    known = [d for d in days if d is not None]
    terms = [f"started_day IN ({', '.join('?' * len(known))})"] if known else []
    if len(known) < len(days):
        terms.append("started_day IS NULL")
    return "(" + " OR ".join(terms) + ")"
