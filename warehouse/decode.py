"""Kafka messages to typed warehouse rows, in batches.

CDRs and alerts are checked against the contract field by field as they are
decoded (:mod:`warehouse.decode_checked`, :mod:`warehouse.output_checks`:
anyone who can write those topics could write anything there); they and the
DLQ records are read by DuckDB's JSON functions over one Arrow column of
values (vectorised). Events go through the contract validator
(:func:`streams.domain.validation.validate`).

A message the sink refuses (it breaks the contract, is not JSON, has no
identity, ...) becomes a row of ``rejects`` with its position, a reason and
its raw value (:mod:`warehouse.rejects`): never silently dropped, never
blocking the sink. An invalid ``call-events`` message is not a reject: the
worker has already sent it to the DLQ, counted there.
"""

from __future__ import annotations

import json

import duckdb
import orjson
import pyarrow as pa

from warehouse import schema
from warehouse.batch import RawBatch, arrow_schema, raw_table
from warehouse.decode_checked import decode_checked
from warehouse.rejects import (
    CHECKED_TABLES,
    ERROR_CHARS,
    EXCERPT_CHARS,
    Rejected,
    first_failure,
    prefix_checks,
    rejects_table,
)

__all__ = ["RawBatch", "arrow_schema", "decode_buffers", "decode_events", "decode_json", "events_table",
           "raw_table", "warm_up"]


def _field(name: str) -> str:
    return f"struct_extract(j, '{name}')"


def _missing(name: str) -> tuple[str, str, str]:
    return f"{_field(name)} IS NULL", f"'missing_field:{name}'", f"'{name} missing or not of its type'"


def _if_object(expr: str) -> str:
    """``expr`` for a value that is a JSON object, else NULL.

    WHEN after WHEN: CASE is the one form whose order the optimizer keeps, and json_type
    must never see a value json_valid refused (it raises).
    """
    return (f"CASE WHEN v IS NULL THEN NULL WHEN NOT json_valid(v) THEN NULL "
            f"WHEN json_type(v) = 'OBJECT' THEN {expr} END")


_JSON_OBJECT = f"{_if_object('json_transform(v, ?)')} AS j"

_DLQ_JSON = {"reason": "VARCHAR", "error": "VARCHAR", "topic": "VARCHAR", "partition": "INTEGER",
             "offset": "BIGINT", "raw": "VARCHAR", "raw_b64": "VARCHAR"}
_DLQ_SELECT = (
    f"{_field('reason')} AS reason, left({_field('error')}, {ERROR_CHARS}) AS error, "
    f"{_field('topic')} AS src_topic, {_field('partition')} AS src_partition, "
    f"{_field('offset')} AS src_offset, "
    f"left(coalesce({_field('raw')}, {_field('raw_b64')}), {EXCERPT_CHARS}) AS raw_excerpt, "
    "make_timestamptz(kafka_ts * 1000) AS ts, kafka_partition, kafka_offset"
)
_DLQ_GUARDS = [_missing(name) for name in ("reason", "topic", "partition", "offset")]

_DLQ_FAILED, _DLQ_MESSAGES = first_failure([*prefix_checks("j"), *_DLQ_GUARDS])
_DLQ_QUERY = (f"SELECT {_DLQ_SELECT}, {_DLQ_MESSAGES}, _failed, _row FROM "
              f"(SELECT *, {_DLQ_FAILED} AS _failed FROM (SELECT *, {_JSON_OBJECT} FROM raw_in))")


def _decode_dlq(con: duckdb.DuckDBPyConnection, raw: RawBatch) -> tuple[pa.Table, list[Rejected]]:
    con.register("raw_in", raw_table(raw))
    try:
        decoded = con.sql(_DLQ_QUERY, params=[json.dumps(_DLQ_JSON)]).to_arrow_table()
    finally:
        con.unregister("raw_in")
    failures = decoded.column("_failed")
    bad = decoded.filter(failures.is_valid())
    refused = list(map(Rejected, bad.column("_row").to_pylist(), bad.column("_reason").to_pylist(),
                       bad.column("_error").to_pylist()))
    return decoded.filter(failures.is_null()).select(list(schema.TABLES["dlq"].column_names)), refused


def decode_json(con: duckdb.DuckDBPyConnection, table: str, raw: RawBatch, *,
                check_keys: bool = False) -> tuple[pa.Table, pa.Table]:
    """Rows of ``table`` (cdrs, alerts or dlq) and ``rejects`` rows from one topic's batch.

    CDRs and alerts are checked against the contract (:mod:`warehouse.output_checks`);
    ``check_keys`` also requires the contract's message keys (the sink's topics; a rebuild
    decodes values it made itself, without keys).
    """
    if table in CHECKED_TABLES:
        good, refused = decode_checked(con, table, raw, check_keys)
    else:
        good, refused = _decode_dlq(con, raw)
    return good.cast(arrow_schema(table)), rejects_table(raw, refused).cast(arrow_schema("rejects"))


def decode_events(raw: RawBatch) -> pa.Table:
    """Valid ``call-events`` messages as ``events`` rows (invalid ones are the DLQ's)."""
    from streams.domain.events import Event
    from streams.domain.validation import validate

    valid = []
    for partition, offset, timestamp_ms, key, value in zip(raw.partitions, raw.offsets, raw.timestamps_ms,
                                                           raw.keys, raw.values):
        # As the worker judges it (contract v1.1: ts against the message's timestamp). A
        # keyless event is kept too, as the sink sees it first; its re-keyed copy is the
        # same event_id, and the first copy wins.
        event = validate(value, key, timestamp_ms)
        if isinstance(event, Event):
            valid.append((partition, offset, event))
    return events_table(valid)


def events_table(valid: list) -> pa.Table:
    """``events`` rows from already validated events: (kafka partition, offset, Event) triples.

    The one place an event becomes a row: the sink and ``callstream rebuild`` both use it.
    """
    from streams.domain.wire import event_to_dict

    rows: dict[str, list] = {name: [] for name in schema.TABLES["events"].column_names}
    for partition, offset, event in valid:
        for name in ("event_id", "call_id", "portal_id", "type", "source", "node"):
            rows[name].append(getattr(event, name))
        rows["ts"].append(event.ts_us)
        rows["data"].append(orjson.dumps(event_to_dict(event)["data"]).decode())
        rows["kafka_partition"].append(partition)
        rows["kafka_offset"].append(offset)
    arrays = {name: pa.array(values, pa.timestamp("us", tz="UTC") if name == "ts" else None)
              for name, values in rows.items()}
    return pa.table(arrays).cast(arrow_schema("events")) if rows["event_id"] else \
        arrow_schema("events").empty_table()


def decode_buffers(con: duckdb.DuckDBPyConnection, buffers: dict[str, RawBatch],
                   tables: dict[str, str]) -> dict[str, pa.Table]:
    """Rows per table (``rejects`` included) from the buffered messages of each topic.

    ``tables`` maps a topic name to the table its messages feed.
    """
    out: dict[str, pa.Table] = {}
    rejects = []
    for topic, raw in buffers.items():
        if not len(raw):
            continue
        table = tables[topic]
        if table == "events":
            out["events"] = decode_events(raw)
            continue
        out[table], bad = decode_json(con, table, raw, check_keys=True)
        if bad.num_rows:
            rejects.append(bad)
    if rejects:
        out["rejects"] = pa.concat_tables(rejects)
    return out


_WARM_UP = {
    "cdrs": (b"c", b'{"call_id":"c","portal_id":"p","version":1,"direction":null,"line":null,"from":null,'
                   b'"to":null,"line_number":null,"shown_number":null,"extranet":null,"user_id":null,'
                   b'"started_at":null,"answered_at":null,"ended_at":"2026-01-01T00:00:00.000Z",'
                   b'"ring_s":null,"talk_s":0.0,"duration_s":null,"status":"incomplete",'
                   b'"hangup_cause":"normal","queue_attempts":0,"forwarded_to":null,"controller":"none",'
                   b'"controller_result":null,"region":null,"rate_per_min":null,"billed_s":0,"cost":"0.00",'
                   b'"currency":null,"recording_urls":[],"recording_bytes":0,"recording_s":0.0,"events":1}'),
    "alerts": (b"p", b'{"alert_id":"stale_key:c","type":"stale_key","portal_id":"p","call_id":"c",'
                     b'"ts":"2026-01-01T00:00:00.000Z","detail":{}}'),
    "dlq": (None, b'{"reason": "r", "topic": "t", "partition": 0, "offset": 0}'),
}


def warm_up(con: duckdb.DuckDBPyConnection) -> None:
    """Decode one sample of each kind, so that lazy imports do not delay the first real flush."""
    for table, (key, value) in _WARM_UP.items():
        raw = RawBatch(table)
        raw.add(0, 0, 0, key, value)
        rows, rejects = decode_json(con, table, raw, check_keys=True)
        if rows.num_rows != 1:  # a sample that no longer passes the checks would warm nothing
            raise RuntimeError(f"warm-up sample of {table} refused: {rejects.to_pylist()}")
    decode_events(RawBatch("events"))
