"""``cdrs`` rows of the rebuild's own CDRs, without the sink's JSON decoder.

A replay hands over each call's last CDR as the JSON bytes the worker's core
wrote (both cores write them byte for byte alike: ``tests/unit/test_native_core.py``).
The sink's decoder (:func:`warehouse.decode.decode_json`) parses such a
message in DuckDB and checks every field against the contract with regular
expressions, which took a quarter of a rebuild's CPU. A rebuild needs neither
the checks (the CDRs are its own) nor DuckDB's parse: the bytes are read once
by orjson into the fields' values, column by column, and DuckDB derives the
typed columns from plain Arrow columns with the very casts the sink's decoder
applies to the same texts (``TRY_CAST`` of a time, a decimal, an integer), so
the rows are the sink's (``tests/unit/test_output_rows.py``: equal query
results on simulated traffic and on hostile samples).

The sink's decoder keeps the raw text of a JSON string where the contract's
pattern allows no escape, and decodes it elsewhere; orjson always decodes.
So a CDR with any backslash or any non-ASCII byte goes to the sink's decoder
(as do the alerts and DLQ records, a few per hundred calls).
"""

from __future__ import annotations

import duckdb
import orjson
import pyarrow as pa

from warehouse import schema
from warehouse.batch import arrow_schema

_TIMES = ("started_at", "answered_at", "ended_at")
_SECONDS = ("ring_s", "talk_s", "duration_s", "recording_s")  # JSON numbers with 3 decimals
_INTEGERS = ("version", "queue_attempts", "billed_s", "recording_bytes", "events")
_TYPED_ARROW = {"extranet": pa.bool_(), "recording_urls": pa.list_(pa.string()),
                **{name: pa.int64() for name in _INTEGERS}}
# The JSON fields of a CDR (the stored columns but the derived ones and the Kafka position).
_FIELDS = tuple(name for name, _ in schema.CDR_COLUMNS
                if not name.startswith("kafka_") and not name.endswith("_text") and name != "started_day")


def _select() -> str:
    """The ``cdrs`` columns from the fields' plain columns (``cdr_in``), as decode_checked
    derives them from the fields' JSON texts."""
    items = []
    for name, sql_type in schema.CDR_COLUMNS:
        column = schema.quote(name)
        if name in _TIMES:
            expr = f"TRY_CAST({column} AS TIMESTAMPTZ)"
        elif name == "started_day":
            expr = "CAST(TRY_CAST(started_at AS TIMESTAMPTZ) AS DATE)"
        elif name.endswith("_text"):
            expr = schema.quote(name[: -len("_text")])
        elif sql_type not in ("VARCHAR", "VARCHAR[]", "BOOLEAN") and not name.startswith("kafka_"):
            expr = f"TRY_CAST({column} AS {sql_type})"
        else:
            expr = column
        items.append(f"{expr} AS {column}")
    return f"SELECT {', '.join(items)} FROM cdr_in"


_QUERY = _select()


def plain(value: bytes) -> bool:
    """A CDR whose strings orjson reads as the sink's decoder stores them (no escape, ASCII)."""
    return value.isascii() and b"\\" not in value


def cdrs_table(con: duckdb.DuckDBPyConnection, values: list[bytes], offsets: list[int],
               partition: int) -> pa.Table:
    """The ``cdrs`` rows of ``values`` (plain CDR JSON, see :func:`plain`) at ``offsets``."""
    rows = [orjson.loads(value) for value in values]
    arrays: dict[str, pa.Array] = {}
    for name in _FIELDS:
        column = [row[name] for row in rows]
        if name in _SECONDS:  # the number's text (3 decimals at most: its float prints it exactly)
            column = [None if x is None else (f"{x:.3f}" if type(x) is float else str(x)) for x in column]
        arrays[name] = pa.array(column, _TYPED_ARROW.get(name, pa.string()))
    arrays["kafka_partition"] = pa.array([partition] * len(rows), pa.int32())
    arrays["kafka_offset"] = pa.array(offsets, pa.int64())
    con.register("cdr_in", pa.table(arrays))
    try:
        return con.sql(_QUERY).to_arrow_table().cast(arrow_schema("cdrs"))
    finally:
        con.unregister("cdr_in")
