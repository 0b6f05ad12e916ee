"""validate(): message-level rules and the envelope, one hand-written case per rule."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from streams.domain.events import CallStarted, Event, Rejection
from streams.domain.validation import MAX_VALUE_BYTES, validate
from tests.unit.wire_samples import CALL_ID, SAMPLE_DATA, check, reason, sample, without

pytestmark = pytest.mark.unit


def test_typical_call_started_becomes_an_event() -> None:
    assert check(sample()) == Event(
        "evt-0001", "call.started", CALL_ID, "b24-acme", "voice", "voice-eu-3", 1_795_601_730_123_000,
        CallStarted("outbound", "rented", "user:17", "+74951234567", "+74957654321", "+74950000000",
                    "17", False, True),
    )


@pytest.mark.parametrize("kind", sorted(SAMPLE_DATA))
def test_every_type_has_a_valid_sample(kind: str) -> None:
    assert isinstance(check(sample(kind)), Event)


def _padded(size: int) -> bytes:
    """A valid event padded with an unknown field to exactly ``size`` bytes."""
    doc = sample()
    doc["pad"] = ""
    base = len(orjson.dumps(doc))
    doc["pad"] = "x" * (size - base)
    value = orjson.dumps(doc)
    assert len(value) == size
    return value


def test_exactly_one_mib_is_accepted_and_one_byte_more_is_too_large() -> None:
    assert isinstance(validate(_padded(MAX_VALUE_BYTES)), Event)
    rejection = validate(_padded(MAX_VALUE_BYTES + 1))
    assert rejection.reason == "too_large"
    assert "1048577" in rejection.error


def test_too_large_is_checked_before_json() -> None:
    assert validate(b"\xff" * (MAX_VALUE_BYTES + 1)).reason == "too_large"


@pytest.mark.parametrize("value", [
    b"", b"{", b"{'v': 1}", b"NaN", b"Infinity", b"-Infinity", b'{"v": NaN}', b'{"v": 1} {}',
    b"\xff\xfe{}", b'{"a": "\xc3"}', b"\xef\xbb\xbf{}", '{"v": 1}'.encode("utf-16"),
    b'{"a": "tab\there"}', b"[" * 5000 + b"]" * 5000,
])
def test_not_json(value: bytes) -> None:
    assert validate(value).reason == "not_json"


def test_tombstone_and_non_bytes_are_not_json() -> None:
    assert validate(None) == Rejection("not_json", "tombstone: the message has no value (null)")
    assert validate("{}").reason == "not_json"  # type: ignore[arg-type]
    assert validate(12).reason == "not_json"  # type: ignore[arg-type]


def test_bytes_like_values_are_read() -> None:
    value = orjson.dumps(sample())
    assert validate(bytearray(value)) == validate(memoryview(value)) == validate(value)


@pytest.mark.parametrize("value", [b"[]", b"1", b'"call"', b"null", b"true", b"1e400"])
def test_not_object(value: bytes) -> None:
    assert validate(value).reason == "not_object"


def test_json_that_orjson_refuses_falls_back_to_the_stdlib_parser() -> None:
    # An escaped lone surrogate is valid JSON; it only has to land in an ignored field.
    doc = orjson.dumps(sample()).replace(b'"v":1', b'"note":"\\ud800","big":1e400,"v":1')
    assert isinstance(validate(doc), Event)
    assert validate(doc.replace(b'"v":1', b'"v":1e400')).reason == "bad_version"


def test_missing_version() -> None:
    assert reason(without(sample(), "v")) == "missing_field:v"
    assert validate(b"{}").reason == "missing_field:v"


@pytest.mark.parametrize("token", [
    b"2", b"0", b"-1", b"1.0", b"1e0", b"true", b'"1"', b"null", b"[1]", b"{}",
    b"18446744073709551617", b"1180591620717411303424",  # beyond 64 bits
])
def test_bad_version(token: bytes) -> None:
    value = orjson.dumps(sample()).replace(b'"v":1', b'"v":' + token)
    assert validate(value).reason == "bad_version"


def test_version_is_checked_before_type() -> None:
    assert reason(sample(type="no.such.type", v=2)) == "bad_version"


def test_missing_and_unknown_type() -> None:
    assert reason(without(sample(), "type")) == "missing_field:type"
    for kind in ["call.Started", "call.start", "", None, 1, ["call.started"]]:
        assert reason(sample(type=kind)) == "unknown_type", kind


ENVELOPE = ["event_id", "call_id", "portal_id", "source", "node", "ts", "data"]


@pytest.mark.parametrize("name", ENVELOPE)
def test_missing_envelope_field(name: str) -> None:
    assert reason(without(sample(), name)) == f"missing_field:{name}"


def test_envelope_fields_are_checked_in_contract_order() -> None:
    doc = sample()
    for name in ENVELOPE:
        doc[name] = 12
    for name in ENVELOPE:
        assert reason(doc) == f"bad_field:{name}"
        doc[name] = sample()[name]
    assert isinstance(check(doc), Event)


@pytest.mark.parametrize("value, ok", [
    ("a", True), ("A-z_0.9:x", True), ("x" * 64, True), ("x" * 65, False), ("", False),
    ("a b", False), ("a/b", False), ("é", False), ("a\n", False), (7, False), (None, False), (True, False),
])
@pytest.mark.parametrize("name", ["event_id", "call_id", "portal_id", "node"])
def test_id_fields(name: str, value: object, ok: bool) -> None:
    doc = sample(**{name: value})
    assert reason(doc) == (None if ok else f"bad_field:{name}")


@pytest.mark.parametrize("kind", sorted(SAMPLE_DATA))
def test_source_must_match_the_type(kind: str) -> None:
    right = sample(kind)["source"]
    wrong = "voice" if right == "controller" else "controller"
    assert reason(sample(kind, source=wrong)) == "bad_field:source"
    assert reason(sample(kind, source="Voice")) == "bad_field:source"


@pytest.mark.parametrize("ts, expected_us", [
    ("2026-11-25T10:15:30Z", 1_795_601_730_000_000),
    ("2026-11-25T10:15:30.1Z", 1_795_601_730_100_000),
    ("2026-11-25T10:15:30.123456Z", 1_795_601_730_123_456),
    ("2026-11-25T10:15:30.123456+00:00", 1_795_601_730_123_456),
    ("2024-02-29T23:59:59.999Z", 1_709_251_199_999_000),
    ("2026-11-25t10:15:30z", 1_795_601_730_000_000),  # RFC 3339 5.6 allows lower case
])
def test_valid_timestamps(ts: str, expected_us: int) -> None:
    assert check(sample(ts=ts)).ts_us == expected_us


@pytest.mark.parametrize("ts", [
    "2026-11-25T10:15:30.1234567Z", "2026-11-25T10:15:30+01:00", "2026-11-25T10:15:30-00:00",
    "2026-11-25T10:15:30", "2026-02-30T10:15:30Z", "2025-02-29T00:00:00Z", "2026-11-25T24:00:00Z",
    "2026-11-25T10:60:00Z", "2026-11-25T10:15:60Z", "2026-11-25 10:15:30Z", "2026-11-25T10:15:30.Z",
    "2026-11-25", "20261125T101530Z", "٢٠٢٦-11-25T10:15:30Z", " 2026-11-25T10:15:30Z", 1_795_601_730, None,
])
def test_bad_timestamps(ts: object) -> None:
    assert reason(sample(ts=ts)) == "bad_field:ts"


@pytest.mark.parametrize("data", [[], "x", None, 1, True])
def test_data_must_be_an_object(data: object) -> None:
    assert reason(sample(data=data)) == "bad_field:data"


def test_unknown_extra_fields_are_ignored() -> None:
    doc = sample("recording.stored", extra={"nested": [1, 2]}, v2_field=None)
    doc["data"]["codec"] = "opus"
    event = check(doc)
    assert isinstance(event, Event)
    assert event == check(sample("recording.stored"))
    assert event.data.seconds == Decimal("61.5")


def test_duplicate_keys_last_one_wins() -> None:
    value = orjson.dumps(sample()).replace(b'"v":1', b'"v":2,"v":1')
    assert isinstance(validate(value), Event)


def test_key_equal_to_call_id_or_none_is_accepted() -> None:
    assert isinstance(check(sample(), CALL_ID.encode()), Event)
    assert isinstance(check(sample(), None), Event)


@pytest.mark.parametrize("key", [b"other", b"", CALL_ID.upper().encode(), CALL_ID.encode() + b" ", b"\xff"])
def test_key_mismatch(key: bytes) -> None:
    result = check(sample(), key)
    assert result.reason == "bad_field:call_id"
    assert "differs from call_id" in result.error


def test_key_is_checked_after_every_content_check() -> None:
    assert reason(sample(ts="bad"), b"other") == "bad_field:ts"
    assert reason(sample("call.ended", data={"cause": "normal"}), b"other") == "missing_field:by"


def test_errors_are_short_and_name_the_value() -> None:
    result = check(sample(node="n" * 5000))
    assert result.reason == "bad_field:node"
    assert "'nnnn" in result.error
    assert len(result.error) < 200
    assert "'bogus'" in check(sample(type="bogus")).error
    assert "'other'" in check(sample(), b"other").error
