"""Contract v1.1 limits in validate(): the bounds of ``ts`` and of string lengths."""

from __future__ import annotations

import orjson
import pytest

from streams.domain.events import Event
from streams.domain.timefmt import parse_ts_us
from streams.domain.validation import validate
from tests.unit.wire_samples import sample, with_data

pytestmark = pytest.mark.unit

TS = "2026-11-25T10:15:30.123Z"
TS_MS = parse_ts_us(TS) // 1000
HOUR_MS = 3_600_000


def _value(doc: dict) -> bytes:
    return orjson.dumps(doc)


@pytest.mark.parametrize("message_ms,accepted", [
    (TS_MS, True),
    (TS_MS - 24 * HOUR_MS, True),  # exactly 24 h ahead of the message: still accepted
    (TS_MS - 24 * HOUR_MS - 1, False),  # one millisecond more
    (TS_MS - 25 * HOUR_MS, False),
    (TS_MS + 365 * 24 * HOUR_MS, True),  # the past is never refused (late events, replays)
])
def test_ts_may_be_at_most_24_hours_after_the_message_timestamp(message_ms: int, accepted: bool) -> None:
    result = validate(_value(sample()), None, message_ms)
    if accepted:
        assert isinstance(result, Event)
    else:
        assert result.reason == "bad_field:ts" and "24 h" in result.error


def test_a_far_future_ts_is_refused_against_the_message_time() -> None:
    # Finding 3 of issue 12: a verdict dated 9999-12-31 was accepted.
    value = _value(sample("controller.bypassed", ts="9999-12-31T23:59:59.999Z"))
    assert validate(value, None, TS_MS).reason == "bad_field:ts"


@pytest.mark.parametrize("message_ms", [None, -1])
def test_without_a_message_timestamp_only_the_lower_bound_holds(message_ms) -> None:
    assert isinstance(validate(_value(sample(ts="9999-12-31T23:59:59Z")), None, message_ms), Event)
    assert validate(_value(sample(ts="1999-12-31T23:59:59.999999Z")), None, message_ms).reason \
        == "bad_field:ts"


@pytest.mark.parametrize("ts,accepted", [
    ("2000-01-01T00:00:00Z", True), ("1999-12-31T23:59:59.999999Z", False),
    ("1970-01-01T00:00:00Z", False), ("0001-01-01T00:00:00Z", False),
])
def test_ts_may_not_be_before_2000(ts: str, accepted: bool) -> None:
    result = validate(_value(sample(ts=ts)), None, TS_MS)
    assert isinstance(result, Event) if accepted else result.reason == "bad_field:ts"


def test_the_ts_bound_is_reported_in_contract_order() -> None:
    # ts comes before data: a future ts with a bad data field names ts.
    doc = with_data("call.ended", cause="exploded")
    doc["ts"] = "2030-01-01T00:00:00Z"
    assert validate(_value(doc), None, TS_MS).reason == "bad_field:ts"
    doc["ts"] = TS
    assert validate(_value(doc), None, TS_MS).reason == "bad_field:cause"


def test_key_saved_at_is_not_bounded_by_the_message_time() -> None:
    # The rule names ts; a key saved "in the future" is the Controller's clock, shown as is.
    doc = with_data("controller.bypassed", key_saved_at="2031-01-01T00:00:00Z")
    assert isinstance(validate(_value(doc), None, TS_MS), Event)


@pytest.mark.parametrize("length,accepted", [(2048, True), (2049, False), (3000, False)])
def test_urls_are_at_most_2048_characters(length: int, accepted: bool) -> None:
    head = "https://rec.example.com/"
    url = head + "a" * (length - len(head))
    assert len(url) == length
    result = validate(_value(with_data("recording.stored", url=url)), None, TS_MS)
    if accepted:
        assert isinstance(result, Event) and result.data.url == url
    else:
        assert result.reason == "bad_field:url"
        assert str(length) in result.error and len(result.error) < 200


def test_the_url_limit_counts_characters_not_bytes() -> None:
    head = "https://rec.example.com/"
    url = head + "\u00e9" * (2048 - len(head))  # 2048 characters, ~4 KB of UTF-8
    assert isinstance(validate(_value(with_data("recording.stored", url=url)), None, TS_MS), Event)
    assert validate(_value(with_data("recording.stored", url=url + "\u00e9")), None, TS_MS).reason \
        == "bad_field:url"


def test_unknown_long_string_fields_are_ignored() -> None:
    # Unknown fields stay ignored (forward compatibility); only the 1 MiB bound applies.
    doc = sample()
    doc["note"] = "x" * 100_000
    doc["data"]["extra"] = "y" * 100_000
    assert isinstance(validate(_value(doc), None, TS_MS), Event)
