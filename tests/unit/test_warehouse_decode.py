"""Kafka message values -> typed warehouse rows (in-memory DuckDB, no files, no broker)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import orjson
import pytest

from streams.domain.alerts import Alert, alert_to_json
from streams.domain.cdr_json import cdr_to_json
from streams.domain.dlq import encode_dlq
from streams.domain.events import Rejection
from streams.simulator import Faults, generate_all
from tests.unit.warehouse_samples import CDR, T0
from warehouse import duck, schema
from warehouse.decode import RawBatch, arrow_schema, decode_events, decode_json

pytestmark = pytest.mark.unit

@pytest.fixture
def con():
    connection = duck.connect()
    yield connection
    connection.close()


def _batch(topic: str, *values: bytes | None) -> RawBatch:
    raw = RawBatch(topic)
    for offset, value in enumerate(values):
        raw.add(1, 100 + offset, 1_795_430_130_000, b"k", value)
    return raw


def test_a_cdr_becomes_one_typed_row_keeping_the_money_text(con):
    rows, rejects = decode_json(con, "cdrs", _batch("cdrs", cdr_to_json(CDR, 3)))
    assert rejects.num_rows == 0
    row = rows.to_pylist()[0]
    assert row["version"] == 3 and row["from"] == "user:u-1" and row["to"] == "+79161234567"
    assert row["started_at"] == datetime(2026, 11, 24, 10, 35, 30, 123000, tzinfo=UTC)
    assert row["started_day"] == date(2026, 11, 24)
    assert row["talk_s"] == Decimal("60.333") and row["ring_s"] == Decimal("5.000")
    assert row["rate_per_min"] == Decimal("1.5") and row["rate_per_min_text"] == "1.50"
    assert row["cost"] == Decimal("1.53") and row["cost_text"] == "1.53"
    assert row["recording_urls"] == ["https://r.example/1.mp3", "https://r.example/2.mp3"]
    assert (row["kafka_partition"], row["kafka_offset"]) == (1, 100)
    assert rows.schema == arrow_schema("cdrs")
    assert rows.column_names == list(schema.TABLES["cdrs"].column_names)


def test_an_incomplete_cdr_keeps_its_nulls(con):
    incomplete = CDR._replace(started_at_us=None, answered_at_us=None, ring_s=None, duration_s=None,
                         talk_s=None, status="incomplete", region=None, rate_per_min=None,
                         currency=None, recording_urls=(), billed_s=0, cost=Decimal("0.00"))
    row = decode_json(con, "cdrs", _batch("cdrs", cdr_to_json(incomplete, 1)))[0].to_pylist()[0]
    assert row["started_at"] is None and row["started_day"] is None and row["talk_s"] is None
    assert row["rate_per_min"] is None and row["rate_per_min_text"] is None
    assert row["recording_urls"] == []


def _changed(**changes) -> bytes:
    return orjson.dumps({**orjson.loads(cdr_to_json(CDR, 1)), **changes})


@pytest.mark.parametrize("value, reason", [
    (b"not json", "not_json"),
    (b"[1, 2]", "not_object"),
    (b"\xff\xfe{}", "not_json"),
    (None, "not_json"),
    (b'{"portal_id": "p", "version": 1}', "missing_field:call_id"),
    (_changed(version="two"), "bad_field:version"),
    (_changed(started_at="yesterday"), "bad_field:started_at"),
    (_changed(cost="1,50"), "bad_field:cost"),
])
def test_a_message_the_sink_cannot_use_becomes_a_reject_not_a_loss(con, value, reason):
    rows, rejects = decode_json(con, "cdrs", _batch("cdrs", cdr_to_json(CDR, 1), value))
    assert rows.num_rows == 1
    reject = rejects.to_pylist()[0]
    assert reject["reason"] == reason and reject["topic"] == "cdrs" and reject["kafka_offset"] == 101
    assert reject["error"]
    assert reject["raw_excerpt"] == (None if value is None else value[:256].decode("utf-8", "replace"))


def test_alert_keeps_its_state_and_detail(con):
    alert = Alert("controller_outage:p-1:2026-11-24T10:35:30.123Z", "controller_outage", "p-1", None, T0,
                  {"state": "open", "bypassed_calls": 5})
    row = decode_json(con, "alerts", _batch("alerts", alert_to_json(alert)))[0].to_pylist()[0]
    assert row["alert_id"] == alert.alert_id and row["call_id"] is None and row["state"] == "open"
    assert json.loads(row["detail"]) == {"state": "open", "bypassed_calls": 5}
    assert row["ts"] == datetime(2026, 11, 24, 10, 35, 30, 123000, tzinfo=UTC)


def test_dlq_record_keeps_reason_source_position_and_an_excerpt(con):
    text = encode_dlq(Rejection("not_json", "boom"), "call-events", 3, 77, b"x" * 1000)
    binary = encode_dlq(Rejection("not_json", "boom"), "call-events", 3, 78, b"\xff" * 10)
    rows, rejects = decode_json(con, "dlq", _batch("dlq", text, binary, b'{"reason": "x"}'))
    first, second = rows.to_pylist()
    assert (first["reason"], first["src_topic"], first["src_partition"], first["src_offset"]) == \
        ("not_json", "call-events", 3, 77)
    assert first["raw_excerpt"] == "x" * 256
    assert second["raw_excerpt"] == orjson.loads(binary)["raw_b64"]
    assert rejects.to_pylist()[0]["reason"] == "missing_field:topic"


def test_valid_events_become_rows_and_invalid_ones_are_left_to_the_dlq():
    messages, _ = generate_all("decode", 3, 1, T0, Faults(malformed=0.3))
    raw = RawBatch("call-events")
    for offset, message in enumerate(messages):
        raw.add(0, offset, T0 // 1000 + 86_400_000, message.key, message.value)  # ts judged against it
    rows = decode_events(raw)
    valid = [m for m in messages if m.kind != "malformed"]
    assert rows.num_rows == len(valid) and rows.schema == arrow_schema("events")
    first = rows.to_pylist()[0]
    doc = orjson.loads(valid[0].value)
    assert first["event_id"] == doc["event_id"] and first["type"] == doc["type"]
    assert json.loads(first["data"]).keys() == doc["data"].keys() | (
        {"extranet", "record"} if doc["type"] == "call.started" else set())
    assert decode_events(RawBatch("call-events")).num_rows == 0
