"""``cdrs`` rows of the rebuild's own CDRs, without the sink's checking decoder.

A replay hands over each call's last CDR as the JSON bytes the worker's core
wrote (both cores write them byte for byte alike: ``tests/unit/test_native_core.py``).
The sink's decoder (:func:`warehouse.decode.decode_json`) parses such a
message in DuckDB and checks every field against the contract with regular
expressions, which took a quarter of a rebuild's CPU. A rebuild needs neither
the checks (the CDRs are its own) nor a parse per row in SQL: Arrow's JSON
reader (C++, one call per batch) reads the fields into typed columns — the
strings, the integers, ``extranet``, the URLs, and the seconds as exact
decimals — and DuckDB derives the stored columns from them with the very casts
the sink's decoder applies to the same texts (``TRY_CAST`` of a time, a rate,
a cost), so the rows are the sink's (``tests/unit/test_output_rows.py``:
equal query results on replayed traffic and on hostile forms). About 3 µs of
CPU per CDR, against ~45 through the sink's decoder.

The sink's decoder keeps the raw text of a JSON string where the contract's
pattern allows no escape, and decodes it elsewhere; a JSON reader always
decodes. So a CDR with any backslash or any non-ASCII byte, and a batch the
reader refuses (a field missing or of another type, a number out of range),
go to the sink's decoder, as do the alerts and DLQ records (a few per hundred
calls).
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pyarrow as pa
import pyarrow.json as pajson

from warehouse import schema
from warehouse.batch import arrow_schema

_TIMES = ("started_at", "answered_at", "ended_at")
_SECONDS = ("ring_s", "talk_s", "duration_s", "recording_s")  # JSON numbers with 3 decimals
_INTEGERS = ("version", "queue_attempts", "billed_s", "recording_bytes", "events")
_TYPED_ARROW = {"extranet": pa.bool_(), "recording_urls": pa.list_(pa.string()),
                **{name: pa.int64() for name in _INTEGERS},
                # A JSON number read as its exact decimal (no float in between).
                **{name: pa.decimal128(18, 3) for name in _SECONDS}}
# The JSON fields of a CDR (the stored columns but the derived ones and the Kafka position).
_FIELDS = tuple(name for name, _ in schema.CDR_COLUMNS
                if not name.startswith("kafka_") and not name.endswith("_text") and name != "started_day")
_JSON_SCHEMA = pa.schema([(name, _TYPED_ARROW.get(name, pa.string())) for name in _FIELDS])


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
    """A CDR whose strings a JSON parser reads as the sink's decoder stores them (no escape, ASCII)."""
    return value.isascii() and b"\\" not in value


def split_cdrs(con: duckdb.DuckDBPyConnection, values: Iterable[bytes], offsets: Iterable[int],
               partition: int) -> tuple[pa.Table | None, list[tuple[int, bytes]]]:
    """(the ``cdrs`` rows of the plain CDRs among ``values``, or None; the (offset, value) pairs
    left to the sink's decoder)."""
    fast_values, fast_offsets, others = [], [], []
    for offset, value in zip(offsets, values):
        if plain(value):
            fast_values.append(value)
            fast_offsets.append(offset)
        else:
            others.append((offset, value))
    if not fast_values:
        return None, others
    try:
        return cdrs_table(con, fast_values, fast_offsets, partition), others
    except pa.ArrowInvalid:  # a form the reader does not take: all to the sink's decoder
        return None, sorted(others + list(zip(fast_offsets, fast_values)))


def cdrs_table(con: duckdb.DuckDBPyConnection, values: list[bytes], offsets: list[int],
               partition: int) -> pa.Table:
    """The ``cdrs`` rows of ``values`` (plain CDR JSON, see :func:`plain`) at ``offsets``.

    Raises ``pyarrow.ArrowInvalid`` for a value outside the forms read here (a field missing
    or of another JSON type, a number out of range): the caller gives those to the sink's decoder.
    """
    data = b"\n".join(values)
    fields = pajson.read_json(
        pa.BufferReader(data),
        read_options=pajson.ReadOptions(use_threads=False, block_size=max(len(data) + 1, 1 << 16)),
        parse_options=pajson.ParseOptions(explicit_schema=_JSON_SCHEMA, unexpected_field_behavior="error"))
    if fields.num_rows != len(values) or any(column.null_count for column in _required(fields)):
        raise pa.ArrowInvalid("a CDR lacks a field")
    table = fields.append_column("kafka_partition", pa.array([partition] * len(values), pa.int32()))
    table = table.append_column("kafka_offset", pa.array(offsets, pa.int64()))
    con.register("cdr_in", table)
    try:
        return con.sql(_QUERY).to_arrow_table().cast(arrow_schema("cdrs"))
    finally:
        con.unregister("cdr_in")


def _required(fields: pa.Table) -> list[pa.ChunkedArray]:
    """The columns a CDR never leaves null (an absent key reads as null too)."""
    return [fields.column(name) for name in ("call_id", "portal_id", "version", "status", "controller",
                                             "billed_s", "cost", "recording_urls", "recording_bytes",
                                             "recording_s", "events")]
