"""validate() under hypothesis: it never raises and only ever answers in contract terms."""

from __future__ import annotations

import string
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from streams.domain import validation_fields
from streams.domain.events import EVENT_TYPES, Event, Rejection
from streams.domain.timefmt import parse_ts_us
from streams.domain.validation import validate
from streams.domain.wire import encode_event
from tests.unit.strategies import ALL_FIELDS, DATA_FIELDS, valid_events, valid_wire

pytestmark = pytest.mark.unit

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PLAIN_REASONS = {"too_large", "not_json", "not_object", "bad_version", "unknown_type"}
REQUIRED_ENVELOPE = ["event_id", "v", "type", "call_id", "portal_id", "source", "node", "ts", "data"]
# Data fields a producer may omit (absent = null, or false for the flags).
OPTIONAL_DATA = {"line_number", "shown_number", "config_id", "extranet", "record"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def assert_contract_answer(result: object) -> None:
    """``result`` is an Event, or a Rejection whose reason is one the contract lists."""
    assert isinstance(result, (Event, Rejection)), result
    if isinstance(result, Rejection):
        kind, _, field = result.reason.partition(":")
        if field:
            assert kind in {"missing_field", "bad_field"} and field in ALL_FIELDS, result
        else:
            assert result.reason in PLAIN_REASONS, result
        assert isinstance(result.error, str) and 0 < len(result.error) <= 200, result


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(value: bytes) -> None:
    result = validate(value, key=value[:8] or None)
    assert_contract_answer(result)
    assert isinstance(result, Rejection)


@FUZZ
@given(json_values)
def test_random_json_never_raises(doc: Any) -> None:
    assert_contract_answer(validate(orjson.dumps(doc)))


@FUZZ
@given(st.dictionaries(st.sampled_from(REQUIRED_ENVELOPE), json_values | st.just(1), max_size=9))
def test_random_envelopes_never_raise(doc: dict[str, Any]) -> None:
    assert_contract_answer(validate(orjson.dumps(doc)))


@FUZZ
@given(valid_wire(), st.data())
def test_byte_level_mutations_never_raise(pair: tuple[Event, dict], data: st.DataObject) -> None:
    value = bytearray(orjson.dumps(pair[1]))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(value)))
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "insert" or at == len(value):
            value[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        elif action == "flip":
            value[at] ^= data.draw(st.integers(1, 255))
        else:
            del value[at]
    assert_contract_answer(validate(bytes(value)))


def _field_paths(wire: dict) -> list[tuple[str, ...]]:
    return [(name,) for name in wire] + [("data", name) for name in wire["data"]]


def _optional(kind: str, name: str) -> bool:
    return name in OPTIONAL_DATA or (kind, name) == ("call.started", "user_id")


def _without_optional(event: Event, name: str) -> Event:
    """``event`` as it reads once its optional data field ``name`` is absent."""
    default = False if name in {"extranet", "record"} else None
    return event._replace(data=event.data._replace(**{name: default}))


@FUZZ
@given(valid_wire(), st.data())
def test_dropping_a_field_names_it(pair: tuple[Event, dict], data: st.DataObject) -> None:
    event, wire = pair
    path = data.draw(st.sampled_from(_field_paths(wire)))
    name, in_data = path[-1], len(path) == 2
    del (wire["data"] if in_data else wire)[name]
    result = validate(orjson.dumps(wire))
    if name not in ALL_FIELDS:  # an unknown extra: nothing changes
        assert result == event
    elif in_data and _optional(event.type, name):
        assert result == _without_optional(event, name)
    else:
        assert isinstance(result, Rejection) and result.reason == f"missing_field:{name}"


@FUZZ
@given(valid_wire(), st.data(), json_values)
def test_garbage_in_one_field_is_blamed_on_that_field(pair: tuple[Event, dict], data: st.DataObject,
                                                      garbage: Any) -> None:
    wire = pair[1]
    path = data.draw(st.sampled_from([p for p in _field_paths(wire) if p[-1] in ALL_FIELDS]))
    name = path[-1]
    (wire["data"] if len(path) == 2 else wire)[name] = garbage
    result = validate(orjson.dumps(wire))
    assert_contract_answer(result)
    if isinstance(result, Event):
        return  # the garbage happened to be a valid value (null where nullable, 1 as v, ...)
    if name == "type" and isinstance(garbage, str) and garbage in EVENT_TYPES:
        return  # another type: its own data fields are now the ones missing
    if name == "data" and isinstance(garbage, dict):
        assert result.reason.partition(":")[2] in DATA_FIELDS, result
        return
    expected = {"v": "bad_version", "type": "unknown_type"}.get(name, f"bad_field:{name}")
    assert result.reason == expected, (path, garbage, result)


@FUZZ
@given(valid_wire(), st.text(max_size=10).filter(lambda name: name not in ALL_FIELDS), json_values,
       st.booleans())
def test_unknown_extra_fields_change_nothing(pair: tuple[Event, dict], name: str, garbage: Any,
                                            in_data: bool) -> None:
    event, wire = pair
    (wire["data"] if in_data else wire)[name] = garbage
    assert validate(orjson.dumps(wire)) == event


@FUZZ
@given(valid_events(), st.binary(max_size=20))
def test_the_key_must_be_the_call_id(event: Event, key: bytes) -> None:
    value = encode_event(event)
    assert validate(value, event.call_id.encode()) == event
    result = validate(value, key)
    if key == event.call_id.encode():
        assert result == event
    else:
        assert result.reason == "bad_field:call_id"


_DIGITS = st.text(string.digits, min_size=1, max_size=4)
_ts_texts = st.builds(
    lambda y, mo, d, t, h, mi, s, frac, zone: f"{y}-{mo}-{d}{t}{h}:{mi}:{s}{frac}{zone}",
    st.text(string.digits, min_size=4, max_size=4), _DIGITS, _DIGITS, st.sampled_from("Tt x"),
    _DIGITS, _DIGITS, _DIGITS, st.just("") | st.text(string.digits, max_size=8).map(lambda f: "." + f),
    st.sampled_from(["Z", "z", "+00:00", "-00:00", "+01:00", "", "ZZ"]),
)


@settings(max_examples=1000, deadline=None)
@given(_ts_texts | st.text(max_size=30))
def test_memoised_timestamp_parser_agrees_with_timefmt(text: str) -> None:
    assume(text.isascii())
    assert validation_fields.ts_to_us(text) == parse_ts_us(text)


def test_day_cache_stays_bounded_and_correct() -> None:
    days = [f"{year:04d}-{month:02d}-15T12:00:00Z" for year in range(1600, 2100) for month in range(1, 13)]
    for text in days:
        assert validation_fields.ts_to_us(text) == parse_ts_us(text)
    assert len(validation_fields._DAY_US) <= validation_fields._DAY_CACHE_SIZE
    assert validation_fields.ts_to_us("2026-02-30T00:00:00Z") is None  # a cached miss stays a miss
    assert validation_fields.ts_to_us("2026-02-30T00:00:00Z") is None
