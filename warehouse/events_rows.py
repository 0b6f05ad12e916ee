"""``events`` rows of valid messages, vectorised: what :func:`warehouse.decode.events_table` makes.

The rebuild's fast path validates a message with the compiled core, which
gives no Python ``Event`` to build the row from, and building it in Python
(``validate`` + ``events_table``) cost more than the rest of the replay. So
the rows of messages already known valid are built by DuckDB over one Arrow
column of their values: the envelope's strings, ``ts``, and ``data`` in the
canonical form of :mod:`streams.domain.wire` (the type's fields in contract
order, absent optional fields as ``null``/``false``, unknown fields dropped),
with ``json_object`` writing the same compact JSON as ``orjson``.

Only *plain* messages take that path: ASCII without a backslash (so no string
needs escaping, and none was escaped), no key given twice (DuckDB reads the
first copy, Python the last), ``ts`` and ``key_saved_at`` written as their
canonical text (``Z``, 3 fraction digits, or 6 of which the last 3 are not
``000``), and ``seconds`` an integer or a decimal of at most 9 integer and 6
fraction digits as DuckDB re-writes it (the form the Python core prints too).
Every other message — any doubt — goes through ``validate`` and
``events_table``, so the rows are always exactly the sink's
(``tests/unit/test_events_rows.py`` holds the two to that on simulated
traffic, drawn events and hand-made odd forms).
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from streams.domain.events import Event
from streams.domain.validation import validate
from warehouse.batch import arrow_schema
from warehouse.decode import events_table

_S = "(d->>'{0}')"  # a string field of data (NULL when absent or null)
_B = "coalesce((d->'{0}')::BOOLEAN, false)"  # a flag, false when absent
_I = "(d->>'{0}')::BIGINT"  # an integer
_DATA = {
    "call.started": [("direction", _S), ("line", _S), ("from", _S), ("to", _S), ("line_number", _S),
                     ("shown_number", _S), ("user_id", _S), ("extranet", _B), ("record", _B)],
    "controller.requested": [],
    "controller.replied": [("result", _S), ("config_id", _S)],
    "controller.bypassed": [("reason", _S), ("key_saved_at", _S)],
    "call.offered": [("user_id", _S), ("attempt", _I), ("rule", _S), ("rings", _I)],
    "call.offer_missed": [("user_id", _S), ("attempt", _I)],
    "call.forwarded": [("to", _S), ("reason", _S)],
    "call.answered": [("user_id", _S)],
    "recording.stored": [("url", _S), ("bytes", _I), ("seconds", "json((d->'seconds')::VARCHAR)"),
                         ("format", _S)],
    "call.ended": [("cause", _S), ("by", _S)],
}


def _data_sql() -> str:
    cases = []
    for kind, fields in _DATA.items():
        args = ", ".join(f"'{name}', {form.format(name)}" for name, form in fields)
        cases.append(f"WHEN '{kind}' THEN json_object({args})::VARCHAR")
    return "CASE type " + " ".join(cases) + " END"


_TS = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
_PLAIN = f"""
    NOT regexp_matches(v, '[\\\\]|[^\\x01-\\x7f]')
    AND len(json_keys(j)) = len(list_distinct(json_keys(j)))
    AND len(json_keys(d)) = len(list_distinct(json_keys(d)))
    AND regexp_full_match(ts_text, '{_TS}(\\.[0-9]{{1,6}})?Z')
    AND (type <> 'controller.bypassed' OR regexp_full_match(d->>'key_saved_at',
         '{_TS}\\.([0-9]{{3}}|[0-9]{{3}}([0-9]{{2}}[1-9]|[0-9][1-9][0-9]|[1-9][0-9]{{2}}))Z'))
    AND (type <> 'recording.stored' OR json_type(d->'seconds') IN ('UBIGINT', 'BIGINT')
         OR regexp_full_match((d->'seconds')::VARCHAR, '(0|[1-9][0-9]{{0,8}})\\.[0-9]{{1,6}}'))
"""
_QUERY = f"""
SELECT _row, plain,
       CASE WHEN plain THEN j->>'event_id' END AS event_id, CASE WHEN plain THEN j->>'call_id' END AS call_id,
       CASE WHEN plain THEN j->>'portal_id' END AS portal_id, CASE WHEN plain THEN type END AS type,
       CASE WHEN plain THEN j->>'source' END AS source, CASE WHEN plain THEN j->>'node' END AS node,
       CASE WHEN plain THEN CAST(ts_text AS TIMESTAMPTZ) END AS ts,
       CASE WHEN plain THEN {_data_sql()} END AS data,
       kafka_partition, kafka_offset
FROM (SELECT *, coalesce({_PLAIN}, false) AS plain
      FROM (SELECT *, j->>'type' AS type, j->>'ts' AS ts_text, j->'data' AS d
            FROM (SELECT _row, kafka_partition, kafka_offset, v, v::JSON AS j FROM events_in)))
"""


def events_rows(con: duckdb.DuckDBPyConnection, valid: list[tuple[int, int, Any]]) -> pa.Table:
    """``events`` rows of ``valid``: (kafka partition, offset, item) triples where an item is a
    Python ``Event`` or anything with a valid message's ``value`` and ``key`` (the compiled
    core's ``NativeEvent``). A message that is not plain is validated again in Python (without
    its broker time: that bound decides validity, which is settled, never the event's fields).
    """
    events = [(p, o, item) for p, o, item in valid if type(item) is Event]
    raw = [(p, o, item) for p, o, item in valid if type(item) is not Event]
    tables = [events_table(events)] if events else []
    if raw:
        plain, others = _vectorised(con, raw)
        tables.append(plain)
        if others:
            tables.append(events_table([(p, o, _event(item))
                                        for p, o, item in others]))
    schema = arrow_schema("events")
    return pa.concat_tables([t.cast(schema) for t in tables]) if tables else schema.empty_table()


def _vectorised(con: duckdb.DuckDBPyConnection, raw: list) -> tuple[pa.Table, list]:
    source = pa.table({
        "_row": pa.array(range(len(raw)), pa.int64()),
        "kafka_partition": pa.array([p for p, _, _ in raw], pa.int32()),
        "kafka_offset": pa.array([o for _, o, _ in raw], pa.int64()),
        "v": pa.array([item.value for _, _, item in raw], pa.binary()).cast(pa.string()),
    })
    con.register("events_in", source)
    try:
        table = con.sql(_QUERY).to_arrow_table()
    finally:
        con.unregister("events_in")
    plain = table.column("plain")
    others = [raw[i] for i in table.filter(pc.invert(plain)).column("_row").to_pylist()]
    rows = table.filter(plain).drop_columns(["_row", "plain"])
    return rows.cast(arrow_schema("events")), others


def _event(item: Any) -> Event:
    event = validate(item.value, item.key)
    if not isinstance(event, Event):
        raise RuntimeError(f"validators disagree on an event of call {getattr(item, 'call_id', '?')!r}")
    return event
