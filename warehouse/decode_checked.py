"""CDRs and alerts: checked against the contract, then typed, in two passes over a batch.

1. Every message: its value parsed once into ``k`` (each field's JSON text,
   output_checks.py), the table's typed columns derived from ``k``, and the
   fast path of the checks (one regex over all fields, a few conditions).
2. Only the messages the fast path refused (rare: forged, broken, or a form
   it does not cover, such as a long list of recordings): every check one by
   one, in order, which names the first broken rule, or finds none (the row
   is then stored).

Two passes because DuckDB prepares every expression of a query each time it
runs it: the rules one by one cost ~0.1 s per batch whatever its size,
the fast path a fraction of that.
"""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from streams.domain.cdr_json import CDR_FIELDS
from warehouse import output_checks, schema
from warehouse.batch import RawBatch, raw_table, subset
from warehouse.rejects import Rejected, first_failure, prefix_checks

_CDR_TIMES = ("started_at", "answered_at", "ended_at")
_STRUCTURES = {"cdrs": {name: "JSON" for name in CDR_FIELDS},
               "alerts": {name: "JSON" for name in output_checks.ALERT_FIELDS}}
# k: every field as JSON text; none over the size limit. try(): json_type of a value that
# is not JSON is NULL instead of an error (one parse fewer than json_valid first).
_PARSED = (f"CASE WHEN v IS NULL THEN NULL WHEN strlen(v) > {output_checks.MAX_VALUE_BYTES} THEN NULL "
           "WHEN try(json_type(v)) = 'OBJECT' THEN json_transform(v, ?) END AS k")


def _cdr_typed() -> str:
    """The ``cdrs`` columns (but the Kafka position) from ``k``."""
    k, s = output_checks.k, output_checks.s
    items = []
    for name, sql_type in schema.CDR_COLUMNS:
        if name.startswith("kafka_"):
            continue
        if name in _CDR_TIMES:
            expr = f"TRY_CAST({s(name)} AS TIMESTAMPTZ)"
        elif name == "started_day":
            expr = f"CAST(TRY_CAST({s('started_at')} AS TIMESTAMPTZ) AS DATE)"
        elif name in ("rate_per_min", "cost"):  # the text is kept, the DECIMAL derived from it
            expr = f"TRY_CAST({s(name)} AS {sql_type})"
        elif name.endswith("_text"):
            expr = s(name[: -len("_text")])
        elif name in ("line_number", "region"):  # free text: unescaped
            expr = output_checks.decoded(name)
        elif name == "recording_urls":
            expr = output_checks.recording_urls_sql()
        elif sql_type == "VARCHAR":
            expr = s(name)
        else:
            expr = f"TRY_CAST({k(name)} AS {sql_type})"
        items.append(f"{expr} AS {schema.quote(name)}")
    return ", ".join(items)


def _alert_typed() -> str:
    k, s = output_checks.k, output_checks.s
    return (", ".join(f"{s(n)} AS {n}" for n in ("alert_id", "type", "portal_id", "call_id"))
            + f", TRY_CAST({s('ts')} AS TIMESTAMPTZ) AS ts, json_extract_string({k('detail')}, '$.state') "
              f"AS state, {k('detail')}::VARCHAR AS detail")


_TYPED = {"cdrs": _cdr_typed(), "alerts": _alert_typed()}


def _rows(table: str) -> str:
    """The batch (``raw_in``) with ``k`` and the typed columns."""
    return f"SELECT *, {_TYPED[table]} FROM (SELECT *, {_PARSED} FROM raw_in)"


def table_checks(table: str, check_keys: bool) -> tuple[str, list[tuple[str, str, str]]]:
    """(the fast path, the checks one by one in the order their reasons are given) of
    ``cdrs`` or ``alerts``; ``check_keys``: the message key is the call_id / portal_id."""
    oc = output_checks
    if table == "cdrs":
        fields, facts, key = oc.cdr_fields(), oc.cdr_facts(), "call_id"
        checks = [oc.recording_urls_check() if f.name == "recording_urls" else oc.field_check(f) for f in fields]
        checks += facts
    else:
        fields, facts, key = oc.alert_fields(), oc.alert_facts(), "portal_id"
        # The per-type call rules name the cause before the id shape that follows from them.
        checks = [oc.field_check(f) for f in fields[:-1]] + facts + [oc.field_check(fields[-1])]
    if check_keys:
        facts = [*facts, oc.key_check(key)]
        checks.append(oc.key_check(key))
    return oc.fast_path(fields, facts), checks


def _run(con: duckdb.DuckDBPyConnection, query: str, table: str, raw: RawBatch) -> pa.Table:
    con.register("raw_in", raw_table(raw))
    try:
        return con.sql(query, params=[json.dumps(_STRUCTURES[table])]).to_arrow_table()
    finally:
        con.unregister("raw_in")


def decode_checked(con: duckdb.DuckDBPyConnection, table: str, raw: RawBatch,
                   check_keys: bool) -> tuple[pa.Table, list[Rejected]]:
    """The rows of ``table`` (cdrs or alerts) that meet the contract, and the refused ones."""
    fast, checks = table_checks(table, check_keys)
    columns = schema.select_list(schema.TABLES[table])
    first = _run(con, f"SELECT {columns}, coalesce(utf8_error IS NULL AND k IS NOT NULL AND {fast}, false) "
                      f"AS _ok, _row FROM ({_rows(table)})", table, raw)
    ok = first.column("_ok")
    doubtful = pc.filter(first.column("_row"), pc.invert(ok)).to_pylist()
    refused: list[Rejected] = []
    if doubtful:
        failed, messages = first_failure([*prefix_checks("k", output_checks.MAX_VALUE_BYTES), *checks])
        second = _run(con, f"SELECT _row, _failed, {messages} FROM (SELECT *, {failed} AS _failed "
                           f"FROM ({_rows(table)}))", table, subset(raw, doubtful))
        rescued = []  # no rule broken: a form the fast path does not cover
        for row, failure, reason, error in zip(*(second.column(c).to_pylist()
                                                 for c in ("_row", "_failed", "_reason", "_error"))):
            if failure is None:
                rescued.append(doubtful[row])
            else:
                refused.append(Rejected(doubtful[row], reason, error))
        if rescued:
            ok = pc.or_(ok, pc.is_in(first.column("_row"), value_set=pa.array(rescued, pa.int64())))
    return first.filter(ok).select(list(schema.TABLES[table].column_names)), refused
