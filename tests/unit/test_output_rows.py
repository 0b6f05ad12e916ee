"""The rebuild's ``cdrs`` rows (output_rows.py: orjson + plain Arrow columns) are the sink's
decoder's rows for the same CDR messages, query result for query result."""

from __future__ import annotations

import orjson
import pyarrow as pa
import pytest

from streams.domain.alerts import AlertRules
from streams.simulator import Faults, Knobs, generate_all
from tests.unit.call_samples import T0
from warehouse import duck
from warehouse.batch import RawBatch
from warehouse.decode import decode_json
from warehouse.output_rows import plain, split_cdrs
from warehouse.replay import PartitionReplay, ReplayConfig
from warehouse.replay_partition import NO_POSITION

pytestmark = pytest.mark.unit

TS_MS = 1_795_773_600_000


@pytest.fixture(scope="module")
def con():
    connection = duck.connect()
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def replayed_cdrs() -> list[bytes]:
    """The last CDR of every call of simulated traffic with every fault, by both cores."""
    from common.config import Settings
    from streams.domain.rating import load_tariffs

    tariffs = load_tariffs(Settings.from_env({}).tariffs_path)
    messages, _ = generate_all(
        23, 500, 4, T0, Faults(duplicates=0.1, shuffle=0.4, late_recordings=0.3, malformed=0.03),
        Knobs(outage_rate=0.15, stale_key=0.3, license_errors=0.05, dev_copy=0.05, extranet=0.05))
    values = []
    for native in ("on", "off"):
        replay = PartitionReplay(ReplayConfig(tariffs, AlertRules(), 4 * 3600.0, "call-events", native=native), 2)
        for offset, message in enumerate(messages):
            # Every seventh call never ends: the final sweep sends it as incomplete.
            if b'"type":"call.ended"' in message.value and hash(message.key) % 7 == 0:
                continue
            replay.feed(offset, TS_MS, message.key, message.value)
        values += replay.finish(TS_MS / 1000 + 5 * 3600).cdrs.values()
    return values


def _hostile(sample: bytes) -> list[bytes]:
    """Forms a worker can send that the common traffic lacks: escapes, non-ASCII, nulls,
    many recordings, extreme numbers and decimals."""
    base = orjson.loads(sample)
    variants = [
        {"line_number": 'say "hi" \\ there', "region": "Zürich\ttab"},
        {"line_number": "caf\u00e9 \u03a9", "region": "R\u00e9gion"},
        {"region": "a/b \u2028 c", "currency": "EUR", "rate_per_min": "0.123456789012345678"},
        {"rate_per_min": "0.05", "cost": "9999999999999999.99", "billed_s": 9_223_372_036_854_775_807},
        {"ring_s": 999_999_999_999.999, "talk_s": 0.001, "duration_s": 0.0, "recording_s": 123.4},
        {"ring_s": 12, "talk_s": 7.5, "duration_s": 19.5},
        {"recording_urls": [f"https://rec.example/{n}.mp3?a=1&b=%20" for n in range(7)],
         "recording_bytes": 10**15, "recording_s": 86400.125},
        {"recording_urls": ["http://r.example/caf\u00e9.wav"]},
        {"recording_urls": ['https://r.example/a\\"b']},
        {"direction": None, "line": None, "from": None, "to": None, "line_number": None, "shown_number": None,
         "extranet": None, "started_at": None, "answered_at": None, "ring_s": None, "talk_s": None,
         "duration_s": None, "status": "incomplete", "user_id": None, "region": None, "rate_per_min": None,
         "currency": None, "billed_s": 0, "cost": "0.00"},
        {"started_at": "0999-12-31T23:59:59.999Z", "ended_at": "9999-12-31T23:59:59.999Z"},
        {"version": 2**62, "queue_attempts": 2**31 - 1, "events": 10_000, "extranet": True},
        {"user_id": "u." * 30 + "end", "call_id": "c:" + "x" * 62},
    ]
    return [orjson.dumps({**base, **change}) for change in variants]


def _offsets(values: list[bytes]) -> list[int]:
    return list(range(-(2**62), -(2**62) + len(values)))


def _sink(con, values: list[bytes]) -> pa.Table:
    raw = RawBatch("cdrs")
    for offset, value in zip(_offsets(values), values):
        raw.add(NO_POSITION, offset, 0, None, value)
    good, bad = decode_json(con, "cdrs", raw)
    assert bad.num_rows == 0, list(zip(bad.column("reason").to_pylist(), bad.column("error").to_pylist()))
    return good


def _rebuild(con, values: list[bytes]) -> pa.Table:
    """As write_outputs does: plain CDRs read here, the others by the sink's decoder."""
    fast, others = split_cdrs(con, values, _offsets(values), NO_POSITION)
    parts = [fast] if fast is not None else []
    if others:
        raw = RawBatch("cdrs")
        for offset, value in others:
            raw.add(NO_POSITION, offset, 0, None, value)
        parts.append(decode_json(con, "cdrs", raw)[0])
    return pa.concat_tables(parts)


def _same_query_results(con, left: pa.Table, right: pa.Table) -> None:
    """Equal as Arrow tables, and every column's text as DuckDB prints it, row for row."""
    left, right = left.sort_by("kafka_offset"), right.sort_by("kafka_offset")
    assert left.schema == right.schema
    assert left.num_rows == right.num_rows
    assert left.equals(right)
    texts = []
    for name, table in (("l", left), ("r", right)):
        con.register(name, table)
        columns = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in table.column_names)
        texts.append(con.sql(f"SELECT {columns} FROM {name} ORDER BY kafka_offset").fetchall())
        con.unregister(name)
    assert texts[0] == texts[1]


def test_replayed_traffic_gives_the_sinks_rows(con, replayed_cdrs):
    assert len(replayed_cdrs) > 800 and all(plain(v) for v in replayed_cdrs)
    statuses = {orjson.loads(v)["status"] for v in replayed_cdrs}
    assert {"answered", "missed", "incomplete"} <= statuses
    _same_query_results(con, _rebuild(con, replayed_cdrs), _sink(con, replayed_cdrs))


def test_hostile_forms_give_the_sinks_rows(con, replayed_cdrs):
    samples = [v for v in replayed_cdrs if (d := orjson.loads(v))["status"] == "answered"
               and d["line"] != "internal" and d["rate_per_min"] is not None][:3]
    values = [hostile for sample in samples for hostile in _hostile(sample)]
    assert any(not plain(v) for v in values) and sum(map(plain, values)) > len(values) // 2
    mixed = values + replayed_cdrs[:200]
    _same_query_results(con, _rebuild(con, mixed), _sink(con, mixed))


def test_a_batch_the_reader_refuses_goes_whole_to_the_sinks_decoder(con, replayed_cdrs):
    # An extra field is no error for the sink (it reads the contract's fields), but the
    # reader here takes only the CDR's own fields: the whole batch falls back, rows unchanged.
    odd = orjson.dumps({**orjson.loads(replayed_cdrs[0]), "extra": [1, {"x": 2}]})
    mixed = replayed_cdrs[1:300] + [odd]
    fast, others = split_cdrs(con, mixed, _offsets(mixed), NO_POSITION)
    assert fast is None and len(others) == len(mixed)
    _same_query_results(con, _rebuild(con, mixed), _sink(con, mixed))
