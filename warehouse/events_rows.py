"""``events`` rows of valid messages, without parsing them again: what :func:`warehouse.decode.events_table` makes.

The rebuild's fast path validates a message with the compiled core
(``callstream_native.validate_row``), which parses it once and keeps, beside
the event it folds, what the message's row needs: the ``node`` and ``data``
in the canonical form of :mod:`streams.domain.wire` (the type's fields in
contract order, absent optional fields as ``null``/``false``, unknown fields
dropped, compact JSON as ``orjson`` writes it). ``callstream_native.event_columns``
hands those rows back as Arrow buffers (one offsets and one data buffer per
string column, the times as int64 microseconds), so a row costs no Python
object per field and no second JSON parse.

Every other valid message goes through the Python core (``validate`` and
``events_table``, the sink's own path): an event the Python core validated, a
message the compiled validator left to Python, and the few the compiled core
accepts but will not write a row for (a ``seconds`` float outside
``[1e-4, 1e15)``, where orjson and Python's ``repr`` print different digits).
``tests/unit/test_events_rows.py`` holds the two to equal rows on simulated
traffic, drawn events and hand-made odd forms.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from streams.domain.events import Event
from streams.domain.validation import validate
from warehouse.batch import arrow_schema
from warehouse.decode import events_table

_TEXT = ("event_id", "call_id", "portal_id", "type", "source", "node", "data")


def events_rows(valid: list[tuple[int, int, Any]]) -> pa.Table:
    """``events`` rows of ``valid``: (kafka partition, offset, item) triples where an item is a
    Python ``Event`` or anything with a valid message's ``value`` and ``key`` (the compiled
    core's ``NativeEvent``; one from ``validate_row`` carries its row). An item without a row
    is validated again in Python (without its broker time: that bound decides validity, which
    is settled, never the event's fields).
    """
    native, others = [], []
    for triple in valid:
        item = triple[2]
        if type(item) is Event:
            others.append(triple)
        elif getattr(item, "has_row", False):
            native.append(triple)
        else:
            others.append((triple[0], triple[1], _event(item)))
    schema = arrow_schema("events")
    tables = []
    if native:
        table, skipped = native_rows(native)
        tables.append(table)
        others.extend((native[i][0], native[i][1], _event(native[i][2])) for i in skipped)
    if others:
        tables.append(events_table(others).cast(schema))
    return pa.concat_tables(tables) if tables else schema.empty_table()


def native_rows(valid: list[tuple[int, int, Any]]) -> tuple[pa.Table, list[int]]:
    """(the rows the compiled core writes for ``valid``'s NativeEvents, the positions it left out)."""
    import callstream_native

    rows, skipped, columns, ts = callstream_native.event_columns([item for _, _, item in valid])
    arrays: dict[str, pa.Array] = {
        name: pa.Array.from_buffers(pa.string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        for name, (offsets, data) in zip(_TEXT, columns)}
    arrays["ts"] = pa.Array.from_buffers(pa.timestamp("us", tz="UTC"), rows, [None, pa.py_buffer(ts)])
    left = set(skipped)
    kept = [triple for i, triple in enumerate(valid) if i not in left] if left else valid
    arrays["kafka_partition"] = pa.array([p for p, _, _ in kept], pa.int32())
    arrays["kafka_offset"] = pa.array([o for _, o, _ in kept], pa.int64())
    schema = arrow_schema("events")
    return pa.table([arrays[name] for name in schema.names], schema=schema), skipped


def _event(item: Any) -> Event:
    event = validate(item.value, item.key)
    if not isinstance(event, Event):
        raise RuntimeError(f"validators disagree on an event of call {getattr(item, 'call_id', '?')!r}")
    return event
