"""DLQ records: fields, raw vs raw_b64, the 4 KiB excerpt of too_large values, the 64 KiB
excerpt of every other reason (contract v1.1), tombstones, and the 1 MiB bound."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.dlq import RAW_KEEP_BYTES, TOO_LARGE_KEEP_BYTES, dlq_record, encode_dlq
from streams.domain.events import Event, Rejection
from streams.domain.validation import MAX_VALUE_BYTES, validate

pytestmark = pytest.mark.unit


def test_record_fields_for_a_utf8_value() -> None:
    value = b'{"v": 2, "note": "\xc3\xa9"}'
    rejection = validate(value)
    assert dlq_record(rejection, "call-events", 3, 41, value) == {
        "reason": "bad_version", "error": rejection.error, "topic": "call-events", "partition": 3,
        "offset": 41, "raw": '{"v": 2, "note": "é"}',
    }


def test_invalid_utf8_goes_to_raw_b64() -> None:
    value = b"\xff\xfe not text"
    record = dlq_record(validate(value), "call-events", 0, 7, value)
    assert record["reason"] == "not_json"
    assert "raw" not in record
    assert base64.b64decode(record["raw_b64"]) == value


def test_tombstone_is_not_json_with_empty_raw() -> None:
    rejection = validate(None)
    record = dlq_record(rejection, "call-events", 1, 2, None)
    assert record["reason"] == "not_json" and record["raw"] == "" and "raw_b64" not in record


def test_too_large_keeps_the_first_4_kib() -> None:
    value = b'{"pad": "' + b"x" * MAX_VALUE_BYTES + b'"}'
    record = dlq_record(validate(value), "call-events", 0, 0, value)
    assert record["reason"] == "too_large"
    assert record["raw"] == value[:TOO_LARGE_KEEP_BYTES].decode() and len(record["raw"]) == 4096
    assert record["raw_truncated"] is True and record["raw_bytes"] == len(value)


@pytest.mark.parametrize("split", [1, 2, 3])
def test_too_large_cut_inside_a_character_keeps_the_longest_valid_prefix(split: int) -> None:
    char = "\U0001f4de".encode()  # 4 bytes; the cut leaves `split` of them
    value = b"a" * (TOO_LARGE_KEEP_BYTES - split) + char * (MAX_VALUE_BYTES // 4 + 1)
    record = dlq_record(validate(value), "call-events", 0, 0, value)
    assert record["reason"] == "too_large"
    assert record["raw"] == "a" * (TOO_LARGE_KEEP_BYTES - split)


def test_too_large_with_invalid_utf8_in_the_excerpt_is_base64() -> None:
    value = b"\xff" + b"a" * MAX_VALUE_BYTES
    record = dlq_record(validate(value), "call-events", 0, 0, value)
    assert base64.b64decode(record["raw_b64"]) == value[:TOO_LARGE_KEEP_BYTES]


def test_other_reasons_keep_a_value_up_to_64_kib_whole() -> None:
    value = b'{"v": 1, "type": "x", "pad": "' + b"y" * (RAW_KEEP_BYTES - 40) + b'"}'
    assert len(value) <= RAW_KEEP_BYTES
    record = dlq_record(validate(value), "call-events", 0, 0, value)
    assert record["reason"] == "unknown_type" and record["raw"] == value.decode()
    assert "raw_truncated" not in record and "raw_bytes" not in record


def test_other_reasons_keep_the_first_64_kib_of_a_longer_value() -> None:
    value = b'{"v": 1, "type": "x", "pad": "' + b"y" * 500_000 + b'"}'
    record = dlq_record(validate(value), "call-events", 0, 0, value)
    assert record["reason"] == "unknown_type"
    assert record["raw"] == value[:RAW_KEEP_BYTES].decode()
    assert record["raw_truncated"] is True and record["raw_bytes"] == len(value)


def test_control_characters_cannot_inflate_a_dlq_record_past_1_mib() -> None:
    # Finding 1 of issue 12: 400 KiB of control characters made a 2.3 MiB DLQ
    # record (each escaped as \u00XX), which the broker refused.
    for value in (bytes(range(32)) * (400 * 1024 // 32), b"\x01" * (MAX_VALUE_BYTES - 1),
                  b"\x00" * (MAX_VALUE_BYTES + 1), b"\xff\x01" * (MAX_VALUE_BYTES // 2)):
        rejection = validate(value)
        encoded = encode_dlq(rejection, "call-events", 0, 0, value)
        assert len(encoded) < 1_048_576 // 2, (rejection.reason, len(encoded))


def test_encode_dlq_is_the_record_as_json() -> None:
    value = b"[1, 2]"
    rejection = validate(value)
    assert orjson.loads(encode_dlq(rejection, "t", 0, 9, value)) == dlq_record(rejection, "t", 0, 9, value)


def test_bytes_like_values_are_accepted() -> None:
    rejection = Rejection("not_object", "x")
    assert dlq_record(rejection, "t", 0, 0, bytearray(b"[]"))["raw"] == "[]"
    assert dlq_record(rejection, "t", 0, 0, memoryview(b"\xff"))["raw_b64"] == "/w=="


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=100).map(str.encode), st.integers(0, 2**31),
       st.integers(0, 2**62))
def test_every_rejection_can_be_written_and_read_back(value: bytes, partition: int, offset: int) -> None:
    result = validate(value)
    if isinstance(result, Event):
        return
    record = orjson.loads(encode_dlq(result, "call-events", partition, offset, value))
    assert record["reason"] == result.reason and (record["partition"], record["offset"]) == (partition, offset)
    restored = record["raw"].encode() if "raw" in record else base64.b64decode(record["raw_b64"])
    assert restored == value
