"""Kafka messages to typed warehouse rows, in batches.

CDRs and alerts are first checked against the contract, field by field
(:mod:`warehouse.output_checks`: anyone who can write those topics could
write anything there); what passes is decoded, with the DLQ records, by
DuckDB's JSON reader over one Arrow column of values (vectorised). Events go
through the contract validator (:func:`streams.domain.validation.validate`).

A message the sink refuses (it breaks the contract, is not JSON, has no
identity, ...) becomes a row of ``rejects`` with its position, a reason and
its raw value (:mod:`warehouse.rejects`): never silently dropped, never
blocking the sink. An invalid ``call-events`` message is not a reject: the
worker has already sent it to the DLQ, counted there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache

import duckdb
import orjson
import pyarrow as pa

from warehouse import duck, schema
from warehouse.rejects import CHECKED_TABLES, ERROR_CHARS, EXCERPT_CHARS, Rejected, rejects_table, screen


@dataclass
class RawBatch:
    """Messages of one topic, column-wise, in consumption order."""

    topic: str
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    timestamps_ms: list[int] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    values: list[bytes | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.offsets)

    def add(self, partition: int, offset: int, timestamp_ms: int, key: bytes | None,
            value: bytes | None) -> None:
        """Append one message."""
        self.partitions.append(partition)
        self.offsets.append(offset)
        self.timestamps_ms.append(timestamp_ms)
        self.keys.append(key)
        self.values.append(value)

    def subset(self, rows: list[int], values: list[bytes]) -> "RawBatch":
        """The messages at ``rows`` (ascending), carrying ``values`` instead of their own."""
        return RawBatch(self.topic, [self.partitions[i] for i in rows], [self.offsets[i] for i in rows],
                        [self.timestamps_ms[i] for i in rows], [self.keys[i] for i in rows], values)


@lru_cache(maxsize=None)
def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a warehouse table (DuckDB's mapping of its SQL types)."""
    con = duck.connect()
    try:
        return con.sql(schema.empty_select(schema.TABLES[table])).to_arrow_table().schema
    finally:
        con.close()


def _text_values(values: list[bytes | None]) -> tuple[pa.Array, list[str | None]]:
    """Values as an Arrow string array; invalid UTF-8 becomes null with an error."""
    try:
        return pa.array(values, pa.binary()).cast(pa.string()), [None] * len(values)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        texts, errors = [], []
        for value in values:
            try:
                texts.append(None if value is None else value.decode("utf-8"))
                errors.append(None)
            except UnicodeDecodeError:
                texts.append(None)
                errors.append("value is not valid UTF-8")
        return pa.array(texts, pa.string()), errors


def raw_table(raw: RawBatch) -> pa.Table:
    """The batch as an Arrow table: position, Kafka time, value text, decoding error."""
    values, errors = _text_values(raw.values)
    return pa.table({
        "_row": pa.array(range(len(raw)), pa.int64()),
        "kafka_partition": pa.array(raw.partitions, pa.int32()),
        "kafka_offset": pa.array(raw.offsets, pa.int64()),
        "kafka_ts": pa.array(raw.timestamps_ms, pa.int64()),
        "v": values,
        "utf8_error": pa.array(errors, pa.string()),
    })


_CDR_JSON = {name: ("VARCHAR" if sql_type in ("TIMESTAMPTZ", "DATE") else sql_type)
             for name, sql_type in schema.CDR_COLUMNS
             if not name.startswith("kafka_") and not name.endswith("_text") and name != "started_day"}
# Money arrives as decimal strings; the text is kept, the DECIMAL derived from it.
_CDR_JSON.update({"rate_per_min": "VARCHAR", "cost": "VARCHAR"})
_CDR_TIMES = ("started_at", "answered_at", "ended_at")


def _field(name: str) -> str:
    return f"struct_extract(j, '{name}')"


def _checks(checks: list[tuple[str, str, str]]) -> str:
    """``_reason`` and ``_error`` columns: of the first (condition, reason, error SQL) that holds.

    Every piece is a constant of this module. A THEN branch runs only on the rows its WHEN
    selected, so the JSON re-parse that tells ``not_json`` from ``not_object`` costs nothing
    for the rows that are objects.
    """
    checks = [("utf8_error IS NOT NULL", "'not_json'", "utf8_error"),
              ("v IS NULL", "'not_json'", "'null value (tombstone)'"),
              ("j IS NULL", "CASE WHEN json_valid(v) THEN 'not_object' ELSE 'not_json' END",
               "'not a JSON object'"), *checks]
    reason = " ".join(f"WHEN {condition} THEN {reason}" for condition, reason, _ in checks)
    error = " ".join(f"WHEN {condition} THEN {error}" for condition, _, error in checks)
    return f"CASE {reason} END AS _reason, CASE {error} END AS _error"


def _missing(name: str) -> tuple[str, str, str]:
    return f"{_field(name)} IS NULL", f"'missing_field:{name}'", f"'{name} missing or not of its type'"


def _cdr_select() -> str:
    items = []
    for name, sql_type in schema.CDR_COLUMNS:
        if name in _CDR_TIMES:
            expr = f"TRY_CAST({_field(name)} AS TIMESTAMPTZ)"
        elif name in ("rate_per_min", "cost"):
            expr = f"TRY_CAST({_field(name)} AS {sql_type})"
        elif name.endswith("_text"):
            expr = _field(name[: -len("_text")])
        elif name == "started_day":
            expr = f"CAST(TRY_CAST({_field('started_at')} AS TIMESTAMPTZ) AS DATE)"
        elif name.startswith("kafka_"):
            expr = name
        else:
            expr = _field(name)
        items.append(f"{expr} AS {schema.quote(name)}")
    # What output_checks already refused; kept as the typed decoder's own guard.
    checks = [_missing("call_id"), _missing("portal_id"), _missing("version")]
    checks += [(f"{_field(t)} IS NOT NULL AND TRY_CAST({_field(t)} AS TIMESTAMPTZ) IS NULL",
                f"'bad_field:{t}'", f"'{t} is not RFC 3339'") for t in _CDR_TIMES]
    checks += [(f"{_field(m)} IS NOT NULL AND TRY_CAST({_field(m)} AS DECIMAL(38,10)) IS NULL",
                f"'bad_field:{m}'", f"'{m} is not a decimal string'") for m in ("rate_per_min", "cost")]
    return ", ".join(items) + ", " + _checks(checks)


_JSON_OBJECT = ("CASE WHEN v IS NOT NULL AND json_valid(v) AND json_type(v) = 'OBJECT' "
                "THEN json_transform(v, ?) END AS j")

_ALERT_JSON = {"alert_id": "VARCHAR", "type": "VARCHAR", "portal_id": "VARCHAR",
               "call_id": "VARCHAR", "ts": "VARCHAR"}
_ALERT_SELECT = (
    f"{_field('alert_id')} AS alert_id, {_field('type')} AS type, {_field('portal_id')} AS portal_id, "
    f"{_field('call_id')} AS call_id, TRY_CAST({_field('ts')} AS TIMESTAMPTZ) AS ts, "
    "CASE WHEN j IS NOT NULL THEN json_extract_string(v, '$.detail.state') END AS state, "
    "CASE WHEN j IS NOT NULL THEN json_extract(v, '$.detail')::VARCHAR END AS detail, "
    "kafka_partition, kafka_offset, "
    + _checks([_missing("alert_id"), _missing("type"),
               (f"TRY_CAST({_field('ts')} AS TIMESTAMPTZ) IS NULL", "'bad_field:ts'",
                "'ts missing or not RFC 3339'")])
)

_DLQ_JSON = {"reason": "VARCHAR", "error": "VARCHAR", "topic": "VARCHAR", "partition": "INTEGER",
             "offset": "BIGINT", "raw": "VARCHAR", "raw_b64": "VARCHAR"}
_DLQ_SELECT = (
    f"{_field('reason')} AS reason, left({_field('error')}, {ERROR_CHARS}) AS error, "
    f"{_field('topic')} AS src_topic, {_field('partition')} AS src_partition, "
    f"{_field('offset')} AS src_offset, "
    f"left(coalesce({_field('raw')}, {_field('raw_b64')}), {EXCERPT_CHARS}) AS raw_excerpt, "
    "make_timestamptz(kafka_ts * 1000) AS ts, kafka_partition, kafka_offset, "
    + _checks([_missing(name) for name in ("reason", "topic", "partition", "offset")])
)

_SELECTS = {"cdrs": (_CDR_JSON, None), "alerts": (_ALERT_JSON, _ALERT_SELECT),
            "dlq": (_DLQ_JSON, _DLQ_SELECT)}


def decode_json(con: duckdb.DuckDBPyConnection, table: str, raw: RawBatch, *,
                check_keys: bool = False) -> tuple[pa.Table, pa.Table]:
    """Rows of ``table`` (cdrs, alerts or dlq) and ``rejects`` rows from one topic's batch.

    CDRs and alerts are first checked against the contract (:mod:`warehouse.output_checks`);
    ``check_keys`` also requires the contract's message keys (the sink's topics; a rebuild
    decodes values it made itself, without keys).
    """
    source, rows, refused = raw, list(range(len(raw))), []
    if table in CHECKED_TABLES:
        rows, canonical, refused = screen(table, raw.keys, raw.values, check_keys)
        raw = raw.subset(rows, canonical)
    structure, select = _SELECTS[table]
    select = select or _cdr_select()
    con.register("raw_in", raw_table(raw))
    try:
        decoded = con.sql(
            f"SELECT {select}, _row, kafka_ts FROM (SELECT *, {_JSON_OBJECT} FROM raw_in)",
            params=[json.dumps(structure)]).to_arrow_table()
    finally:
        con.unregister("raw_in")
    errors = decoded.column("_error")
    good = decoded.filter(errors.is_null()).select(list(schema.TABLES[table].column_names))
    bad = decoded.filter(errors.is_valid())
    refused += map(Rejected, [rows[i] for i in bad.column("_row").to_pylist()],
                   bad.column("_reason").to_pylist(), bad.column("_error").to_pylist())
    return good.cast(arrow_schema(table)), rejects_table(source, refused).cast(arrow_schema("rejects"))


def decode_events(raw: RawBatch) -> pa.Table:
    """Valid ``call-events`` messages as ``events`` rows (invalid ones are the DLQ's)."""
    from streams.domain.events import Event
    from streams.domain.validation import validate

    valid = []
    for partition, offset, key, value in zip(raw.partitions, raw.offsets, raw.keys, raw.values):
        event = validate(value, key)
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
