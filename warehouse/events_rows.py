"""``events`` rows of valid messages, vectorised: what :func:`warehouse.decode.events_table` makes.

The rebuild's fast path validates a message with the compiled core, which
gives no Python ``Event`` to build the row from, and building it in Python
(``validate`` + ``events_table``) cost more than the rest of the replay. So
the rows of messages already known valid are built by DuckDB over one Arrow
column of their values: the envelope's strings, ``ts``, and ``data`` in the
canonical form of :mod:`streams.domain.wire` (the type's fields in contract
order, absent optional fields as ``null``/``false``, unknown fields dropped),
with ``json_object`` writing the same compact JSON as ``orjson``.

Only messages the compiled core's validator accepted come here (it declines
escapes and non-ASCII text in every field read here, and numbers with a sign:
``native/src/validate.rs``), and of those only the *plain* ones take that
path: the envelope is its nine fields and ``data`` its type's fields in
contract order, each once (DuckDB reads the first copy of a key given twice,
Python the last), as the project's producers write them; ``ts`` and
``key_saved_at`` written as their canonical text (``T``, ``Z``, 3 fraction
digits, or 6 of which the last 3 are not ``000``); ``seconds`` an integer or a
decimal of at most 9 integer and 6 fraction digits as DuckDB re-writes it (the
form the Python core prints too). Every other message — any doubt — goes
through ``validate`` and ``events_table``, so the rows are always exactly the
sink's (``tests/unit/test_events_rows.py`` holds the two to that on simulated
traffic, drawn events and hand-made odd forms). Cost: about 4 µs of CPU per
event in DuckDB (one JSON parse), against 13 in Python.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from streams.domain.events import Event
from streams.domain.validation import validate
from warehouse.batch import arrow_schema
from warehouse.decode import events_table

_ENVELOPE = ("event_id", "type", "call_id", "portal_id", "source", "node", "ts")
_DATA = {
    "call.started": ("direction", "line", "from", "to", "line_number", "shown_number", "user_id",
                     "extranet", "record"),
    "controller.requested": (),
    "controller.replied": ("result", "config_id"),
    "controller.bypassed": ("reason", "key_saved_at"),
    "call.offered": ("user_id", "attempt", "rule", "rings"),
    "call.offer_missed": ("user_id", "attempt"),
    "call.forwarded": ("to", "reason"),
    "call.answered": ("user_id",),
    "recording.stored": ("url", "bytes", "seconds", "format"),
    "call.ended": ("cause", "by"),
}
_FLAGS = ("extranet", "record")  # absent means false
_FIELDS = sorted({name for names in _DATA.values() for name in names})
# One parse per message: the envelope's strings, and every data field as its JSON text
# (SQL NULL when absent), which json_object embeds as it is.
_STRUCTURE = json.dumps({**{name: "VARCHAR" for name in _ENVELOPE},
                         "data": {name: "JSON" for name in _FIELDS}})


def _field(name: str) -> str:
    return f"m.data.{schema_quote(name)}"


def schema_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _data_sql() -> str:
    cases = []
    for kind, fields in _DATA.items():
        args = ", ".join(f"'{name}', " + (f"coalesce({_field(name)}, 'false'::JSON)" if name in _FLAGS
                                            else _field(name)) for name in fields)
        cases.append(f"WHEN '{kind}' THEN json_object({args})::VARCHAR")
    return "CASE m.type " + " ".join(cases) + " END"


def _keys_sql() -> str:
    """Its type's data keys, in contract order: a message whose ``data`` has exactly these is
    plain (no field omitted, unknown or given twice)."""
    cases = []
    for kind, fields in _DATA.items():
        names = ", ".join(f"'{name}'" for name in fields)
        cases.append(f"WHEN '{kind}' THEN [{names}]::VARCHAR[]")
    return "CASE m.type " + " ".join(cases) + " END"


_SECONDS = f"{_field('seconds')}::VARCHAR"
# Plain: the envelope is its nine fields and data its type's fields in contract order, each
# once (a key given twice is read first-wins here, last-wins by Python), as the project's own
# producers write them; the times in their canonical text;
# ``seconds`` an integer or a short decimal (as DuckDB re-writes it, Python prints the same).
_PLAIN = f"""
    json_keys_count = 9 AND data_keys = {_keys_sql()}
    AND substr(m.ts, 11, 1) = 'T' AND right(m.ts, 1) = 'Z'
    AND (m.type <> 'controller.bypassed' OR (substr(ksa, 11, 1) = 'T' AND right(ksa, 1) = 'Z'
         AND (length(ksa) = 24 OR (length(ksa) = 27 AND substr(ksa, 24, 3) <> '000'))))
    AND (m.type <> 'recording.stored' OR json_type({_field('seconds')}) IN ('UBIGINT', 'BIGINT')
         OR regexp_full_match({_SECONDS}, '(0|[1-9][0-9]{{0,8}})\\.[0-9]{{1,6}}'))
"""
_QUERY = f"""
SELECT _row, plain,
       CASE WHEN plain THEN m.event_id END AS event_id, CASE WHEN plain THEN m.call_id END AS call_id,
       CASE WHEN plain THEN m.portal_id END AS portal_id, CASE WHEN plain THEN m.type END AS type,
       CASE WHEN plain THEN m.source END AS source, CASE WHEN plain THEN m.node END AS node,
       CASE WHEN plain THEN CAST(m.ts AS TIMESTAMPTZ) END AS ts,
       CASE WHEN plain THEN {_data_sql()} END AS data,
       kafka_partition, kafka_offset
FROM (SELECT *, coalesce({_PLAIN}, false) AS plain
      FROM (SELECT *, json_extract_string({_field('key_saved_at')}, '$') AS ksa
            FROM (SELECT _row, kafka_partition, kafka_offset, json_transform(v, '{_STRUCTURE}') AS m,
                         len(json_keys(v)) AS json_keys_count, json_keys(v, '$.data') AS data_keys
                  FROM events_in)))
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
