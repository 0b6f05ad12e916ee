"""Wire codec: the exact shape of encoded events and the round trip through validate()."""

from __future__ import annotations

import json
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings

from streams.domain import events as ev
from streams.domain.validation import validate
from streams.domain.wire import encode_event, event_to_dict, format_ts_wire, seconds_to_json
from tests.unit.strategies import valid_events, valid_wire
from tests.unit.wire_samples import SAMPLE_DATA, check, sample

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("ts_us, text", [
    (1_795_601_730_123_000, "2026-11-25T10:15:30.123Z"),
    (1_795_601_730_000_000, "2026-11-25T10:15:30.000Z"),
    (1_795_601_730_123_456, "2026-11-25T10:15:30.123456Z"),
    (1_795_601_730_000_001, "2026-11-25T10:15:30.000001Z"),
    (0, "1970-01-01T00:00:00.000Z"),
    (-1, "1969-12-31T23:59:59.999999Z"),
    (-62_135_596_800_000_000, "0001-01-01T00:00:00.000Z"),
    (253_402_300_799_999_999, "9999-12-31T23:59:59.999999Z"),
])
def test_format_ts_wire(ts_us: int, text: str) -> None:
    assert format_ts_wire(ts_us) == text
    if ts_us >= 946_684_800_000_000:  # contract v1.1 refuses an event ts before 2000
        assert check(sample(ts=text)).ts_us == ts_us
    else:
        assert validate(orjson.dumps(sample(ts=text))).reason == "bad_field:ts"


@pytest.mark.parametrize("seconds, number", [
    (Decimal("61.5"), 61.5), (Decimal(0), 0), (Decimal(7200), 7200), (Decimal("5.0"), 5.0),
    (Decimal("1E+16"), 10**16), (Decimal("1E+300"), 1e300), (Decimal("1E-7"), 1e-7),
])
def test_seconds_to_json(seconds: Decimal, number: float) -> None:
    written = seconds_to_json(seconds)
    assert written == number and type(written) is type(number)


def test_call_started_wire_shape() -> None:
    doc = sample()
    event = check(doc)
    assert event_to_dict(event) == doc
    assert list(event_to_dict(event)) == list(doc)
    assert list(event_to_dict(event)["data"]) == list(SAMPLE_DATA["call.started"])
    assert b'"from":"user:17"' in encode_event(event) and b"from_" not in encode_event(event)


@pytest.mark.parametrize("kind", sorted(SAMPLE_DATA))
def test_every_type_writes_back_its_sample(kind: str) -> None:
    doc = sample(kind)
    if kind == "controller.bypassed":
        doc["data"]["key_saved_at"] = "2026-11-24T03:00:00.000Z"  # written with milliseconds
    assert event_to_dict(check(doc)) == doc


def test_nulls_and_defaults_are_written_explicitly() -> None:
    doc = sample()
    for name in ["line_number", "shown_number", "user_id", "extranet", "record"]:
        del doc["data"][name]
    data = event_to_dict(check(doc))["data"]
    assert (data["line_number"], data["shown_number"], data["user_id"]) == (None, None, None)
    assert (data["extranet"], data["record"]) == (False, False)


def test_encoding_is_compact_utf8_json_that_the_stdlib_reads() -> None:
    event = check(sample("controller.replied", data={"result": "ok", "config_id": "Офис 2"}))
    value = encode_event(event)
    assert "Офис 2".encode() in value
    assert json.loads(value) == event_to_dict(event)


@settings(max_examples=400, deadline=None)
@given(valid_events())
def test_round_trip(event: ev.Event) -> None:
    value = encode_event(event)
    assert validate(value) == event
    assert validate(value, event.call_id.encode()) == event
    assert orjson.loads(value) == event_to_dict(event)


@settings(max_examples=200, deadline=None)
@given(valid_wire())
def test_producer_variants_read_back_to_the_same_event(pair: tuple[ev.Event, dict]) -> None:
    event, wire = pair
    assert validate(orjson.dumps(wire)) == event
    assert validate(encode_event(validate(orjson.dumps(wire)))) == event
