"""One call by call_id without scanning every call: the deltas first, then the call index.

A delta row, when there is one, is the call's newest version (it shadows the
base, views.py). Otherwise the call index (call_index.py) gives the call's
``started_day``, which prunes the base files — sorted by start — to a row
group or two, instead of decoding the call_id of all ten million calls.

The statements may see two manifests (the sink publishes every half second);
each answer is then the call as of one of them — never older than before.
"""

from __future__ import annotations

from typing import Any


def call_by_id(con, call_id: str) -> dict[str, Any] | None:
    """The latest CDR of one call (every warehouse column), or None."""
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
