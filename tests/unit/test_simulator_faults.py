"""Delivery faults do what they say, and never change the calls themselves."""

from __future__ import annotations

import random

import orjson
import pytest

from streams.domain.events import Event, Rejection
from streams.domain.timefmt import parse_ts_us
from streams.domain.validation import validate
from streams.simulator import Faults, Knobs, generate_all, malformed

pytestmark = pytest.mark.unit

START_US = parse_ts_us("2026-11-24T07:00:00Z")
CALLS = 1500


@pytest.fixture(scope="module")
def clean():
    return generate_all(21, CALLS, 10, START_US)


def _run(**faults):
    return generate_all(21, CALLS, 10, START_US, faults=Faults(**faults))


def _ts(message) -> int:
    return parse_ts_us(orjson.loads(message.value)["ts"])


def test_faults_do_not_change_the_calls(clean):
    messages, truth = _run(duplicates=0.2, shuffle=0.5, late_recordings=0.5)
    clean_messages, clean_truth = clean
    assert truth == clean_truth
    assert {m.value for m in messages} == {m.value for m in clean_messages}
    assert sum(m.kind == "event" for m in messages) == len(clean_messages)


def test_without_faults_delivery_follows_event_time(clean):
    times = [_ts(m) for m in clean[0]]
    # Only the Controller's clock skew (at most 40 ms) puts an event before its predecessor.
    assert all(b >= a - 40_000 for a, b in zip(times, times[1:]))


def test_duplicates_repeat_the_same_bytes(clean):
    messages, _ = _run(duplicates=0.3)
    duplicates = [m for m in messages if m.kind == "duplicate"]
    events = len(clean[0])
    assert 0.25 * events < len(duplicates) < 0.35 * events
    seen: set[bytes] = set()
    for m in messages:
        if m.kind == "duplicate":
            assert m.value in seen  # the original went first, with the same event_id
        seen.add(m.value)


def test_shuffle_delivers_calls_out_of_order():
    messages, _ = _run(shuffle=1.0)
    first_type: dict[bytes, str] = {}
    for m in messages:
        first_type.setdefault(m.key, orjson.loads(m.value)["type"])
    not_started_first = sum(t != "call.started" for t in first_type.values())
    assert not_started_first > CALLS * 0.5


def test_late_recordings_arrive_after_calls_started_minutes_later():
    messages, _ = _run(late_recordings=1.0)
    docs = [orjson.loads(m.value) for m in messages]
    later_starts = 0
    for i, doc in enumerate(docs):
        if doc["type"] != "recording.stored":
            continue
        held_until = parse_ts_us(doc["ts"]) + 5 * 60_000_000
        earlier_started_after = [d for d in docs[i + 1:] if d["type"] == "call.started"
                                 and parse_ts_us(d["ts"]) < held_until]
        assert earlier_started_after == []
        later_starts += any(d["type"] == "call.started" and parse_ts_us(d["ts"]) > parse_ts_us(doc["ts"])
                            for d in docs[:i])
    assert later_starts > 0


def test_malformed_messages_are_recorded_with_their_dlq_reason():
    messages, truth = _run(malformed=0.05)
    bad_truth = [t for t in truth if t.get("malformed")]
    bad = [(i, m) for i, m in enumerate(messages) if m.kind == "malformed"]
    assert len(bad) == len(bad_truth) > 0
    for (index, message), record in zip(bad, bad_truth):
        assert record["index"] == index and record["key"] == message.key.decode()
        rejection = validate(message.value, message.key)
        assert isinstance(rejection, Rejection), record
        assert rejection.reason == record["reason"]
    assert all(isinstance(validate(m.value, m.key), Event) for m in messages if m.kind != "malformed")


def test_every_malformed_kind_gets_exactly_its_reason():
    templates = {}
    for m in generate_all(8, 1000, 5, START_US, knobs=Knobs(outage_rate=0.2))[0]:
        templates.setdefault(orjson.loads(m.value)["type"], m.value)
    assert len(templates) == 10
    rng = random.Random(5)
    kinds = set()
    for template in templates.values():
        for maker in malformed._MAKERS:
            for _ in range(8):
                value, reason, kind = maker(rng, orjson.loads(template))
                rejection = validate(value, None)
                assert isinstance(rejection, Rejection), (kind, value[:200])
                assert rejection.reason == reason, (kind, value[:200], rejection)
                kinds.add(kind)
    assert kinds >= {"truncated_json", "plain_text", "invalid_utf8", "not_object", "bad_version",
                     "missing_version", "unknown_type", "missing_envelope_field",
                     "bad_envelope_field", "missing_data_field", "bad_data_field", "too_large"}


def test_malformed_values_are_really_malformed(clean):
    rng = random.Random(9)
    template = clean[0][0].value
    value, _, _ = malformed._invalid_utf8(rng, orjson.loads(template))
    with pytest.raises(UnicodeDecodeError):
        value.decode("utf-8")
    value, _, _ = malformed._too_large(rng, orjson.loads(template))
    assert len(value) > 1024 * 1024
    value, _, _ = malformed._truncated(rng, orjson.loads(template))
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(value)


def test_fault_probabilities_are_checked():
    with pytest.raises(ValueError, match="duplicates"):
        Faults(duplicates=1.5)
    with pytest.raises(ValueError, match="malformed"):
        Faults(malformed=-0.1)
