"""Contract v1.1 per call: the event cap, the first 100 recording urls, state bounds,
the state format 3 (and reading format 2), and ``recording_missing``."""

from __future__ import annotations

import random
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.alerts import AlertRules
from streams.domain.calls import advance, check_recording, recording_due, settled
from streams.domain.cdr import build_cdr, state_of_events
from streams.domain.cdr_json import cdr_to_json
from streams.domain.shared import CALL_EVENTS_CEILING, MAX_RECORDING_URLS, MAX_STATE_BYTES
from streams.domain.state import CallState, First, first_urls, fold, state_from_bytes, state_to_bytes
from tests.unit.call_samples import SIMPLE_TARIFFS, ev

pytestmark = pytest.mark.unit

RULES = AlertRules()
WAIT = 3600.0


def step(state, *events, now: float = 1000.0, max_events: int = 10_000):
    return advance(state, list(events), SIMPLE_TARIFFS, RULES, now, 2, max_events)


def recording(i: int, at: float, url: str | None = None, **fields):
    return ev("recording.stored", f"r{i:06d}", at, url=url or f"https://rec.example/{i}.mp3", **fields)


# --- the cap on a call's events ------------------------------------------------------

def test_events_beyond_the_cap_are_refused_in_log_order_and_change_nothing() -> None:
    offers = [ev("call.offered", f"o{i:04d}", 1 + i / 100, attempt=i + 1) for i in range(150)]
    events = [ev("call.started", "s", 0), *offers, ev("call.ended", "e", 9)]
    state, out = step(None, *events, max_events=100)
    assert len(state.event_ids) == 100
    assert out.refused == list(range(100, 152))  # the 100th offer on, and call.ended
    assert out.cdrs == []  # call.ended was refused: the call is not complete
    assert state == state_of_events(events, 100)._replace(
        version=0, touched_at=1000.0, partition=2, emitted=state.emitted)


def test_a_duplicate_of_an_accepted_event_is_not_refused_once_the_call_is_full() -> None:
    events = [ev("call.started", "s", 0)] + [ev("call.offered", f"o{i:03d}", 1, attempt=1)
                                             for i in range(99)]
    state, _ = step(None, *events, max_events=100)
    again, out = step(state, events[5], ev("call.offered", "new", 2, attempt=2), events[0],
                      max_events=100)
    assert again is None and out.refused == [1]


def test_the_set_form_takes_the_first_events_in_log_order() -> None:
    events = [ev("call.started", "s", 0)] + [ev("call.offered", f"o{i:03d}", 1, attempt=i + 1)
                                             for i in range(120)] + [ev("call.ended", "e", 5)]
    state = state_of_events(events, 100)
    assert len(state.event_ids) == 100 and state.attempts == tuple(range(1, 100))
    assert state.ended is None
    with pytest.raises(ValueError):
        build_cdr(events, SIMPLE_TARIFFS, max_events=100)


def test_a_hundred_thousand_offers_keep_the_state_small() -> None:
    # Finding 1 of issue 12: 100,000 call.offered made a 7 MB state the broker refused.
    offers = [ev("call.offered", f"offer-{i:06d}", 1, attempt=i + 1) for i in range(100_000)]
    state, out = step(None, ev("call.started", "s", 0), *offers)
    assert len(out.refused) == 100_000 - 9_999
    assert len(state_to_bytes(state)) < 400_000


# --- the first 100 recording urls -----------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 160)), min_size=1, max_size=400),
       st.randoms(use_true_random=False))
def test_any_order_of_recordings_keeps_the_sets_first_urls(draws, rng) -> None:
    events = [ev("call.started", "s", 0)]
    events += [recording(i, ts, url=f"https://rec.example/{u}.mp3", bytes=i, seconds=Decimal(i) / 8)
               for i, (ts, u) in enumerate(draws)]
    expected = state_of_events(events)
    assert len(expected.urls) == min(MAX_RECORDING_URLS, len({u for _, u in draws}))
    rng.shuffle(events)
    state = None
    for event in events:
        state, _ = fold(state, event)
    assert (state.urls, state.rec_bytes, state.rec_seconds) == \
        (expected.urls, expected.rec_bytes, expected.rec_seconds)


def test_the_cdr_lists_the_first_100_urls_and_sums_every_recording() -> None:
    recs = [recording(i, 70 + (i % 300), bytes=10, seconds=Decimal("1.5")) for i in range(1000)]
    cdr = build_cdr([ev("call.started", "s", 0), ev("call.ended", "e", 65), *recs], SIMPLE_TARIFFS)
    assert len(cdr.recording_urls) == 100
    assert cdr.recording_urls[0] == "https://rec.example/0.mp3"  # ts 70, the earliest
    assert cdr.recording_bytes == 10_000 and cdr.recording_s == Decimal("1500.000")


def test_recording_bytes_saturate_at_the_largest_bigint() -> None:
    huge = [recording(i, 70 + i, bytes=2**63 - 1, seconds=Decimal(1)) for i in range(3)]
    events = [ev("call.started", "s", 0), ev("call.ended", "e", 65), *huge]
    state, out = step(None, *events)
    assert state.rec_bytes == 2**63 - 1 == orjson.loads(out.cdrs[0])["recording_bytes"]
    assert build_cdr(events, SIMPLE_TARIFFS).recording_bytes == 2**63 - 1


def test_first_urls_moves_a_url_to_its_earlier_recording() -> None:
    urls = first_urls(first_urls((), 50, "b"), 60, "a")
    assert urls == ((50, "b"), (60, "a"))
    assert first_urls(urls, 10, "a") == ((10, "a"), (50, "b"))
    assert first_urls(urls, 70, "a") is urls


# --- bounds and the state format ---------------------------------------------------------

def test_the_worst_case_state_fits_the_internal_topics_limit() -> None:
    long_id = "x" * 55
    state = CallState(
        "c" * 64, tuple(sorted(f"{long_id}{i:09d}" for i in range(CALL_EVENTS_CEILING))),
        First(0, f"{long_id}{0:09d}", "p" * 64),
        attempts=tuple(2**63 - 1 - i for i in range(CALL_EVENTS_CEILING))[::-1],
        urls=tuple((i, "https://h/" + "\U0001f4de" * 2038) for i in range(MAX_RECORDING_URLS)),
        rec_bytes=2**63 - 1, rec_seconds=Decimal("1.7976931348623157E+308"))
    size = len(state_to_bytes(state))
    assert 2_000_000 < size < MAX_STATE_BYTES


def test_format_3_round_trips_and_format_2_is_read() -> None:
    events = [ev("call.started", "s", 0), ev("call.ended", "e", 65),
              recording(1, 70, bytes=5, seconds=Decimal("1.25")),
              recording(2, 66, bytes=7, seconds=Decimal("0.5")),
              recording(3, 80, url="https://rec.example/2.mp3", bytes=1, seconds=Decimal(2))]
    state = state_of_events(events)
    blob = state_to_bytes(state)
    assert orjson.loads(blob)[0] == 3 and state_from_bytes(blob) == state
    raw = orjson.loads(blob)
    index = {e: i for i, e in enumerate(state.event_ids)}
    raw[0] = 2
    raw[12] = [[e.ts_us, index[e.event_id], e.data.url, e.data.bytes, str(e.data.seconds)]
               for e in sorted(events[2:], key=lambda e: (e.ts_us, e.event_id))]
    assert state_from_bytes(orjson.dumps(raw)) == state


# --- recording_missing ----------------------------------------------------------------

RECORDED_CALL = [ev("call.started", "s", 0, record=True), ev("call.answered", "a", 5),
                 ev("call.ended", "e", 65)]


def _alerts(out) -> dict[str, dict]:
    return {orjson.loads(p)["alert_id"]: orjson.loads(p) for _, p in out.alerts}


def test_recording_missing_waits_then_is_raised_then_retracted_by_a_late_recording() -> None:
    state, out = step(None, *RECORDED_CALL, now=1000.0)
    assert "recording_missing:call-1" not in _alerts(out)
    assert recording_due(state, WAIT) == 1000.0 + WAIT and not settled(state)
    state, out = check_recording(state, SIMPLE_TARIFFS, RULES)
    alert = _alerts(out)["recording_missing:call-1"]
    assert alert["type"] == "recording_missing" and alert["call_id"] == "call-1"
    assert alert["detail"]["talk_s"] == "60.000" and "state" not in alert["detail"]
    assert recording_due(state, WAIT) is None and settled(state)
    state, out = step(state, recording(1, 70), now=9000.0)
    assert _alerts(out)["recording_missing:call-1"]["detail"] == {"state": "retracted"}


def test_ended_is_seen_once_and_a_recording_in_time_raises_nothing() -> None:
    state, _ = step(None, *RECORDED_CALL, now=1000.0)
    state, out = step(state, ev("call.ended", "e0", 64), now=2000.0)
    assert recording_due(state, WAIT) == 1000.0 + WAIT  # the first call.ended seen counts
    state, out = step(state, recording(1, 70), now=3000.0)
    assert recording_due(state, WAIT) is None and settled(state)
    state, out = check_recording(state, SIMPLE_TARIFFS, RULES)
    assert out.alerts == []


@pytest.mark.parametrize("events", [
    [ev("call.started", "s", 0, record=False), ev("call.answered", "a", 5), ev("call.ended", "e", 65)],
    [ev("call.started", "s", 0, record=True), ev("call.ended", "e", 65)],  # not answered
    [ev("call.started", "s", 0, record=True), ev("call.answered", "a", 5),
     ev("call.ended", "e", 5.9994)],  # talk_s 0.999 < 1
])
def test_calls_that_need_no_recording_are_never_checked(events) -> None:
    state, _ = step(None, *events)
    assert recording_due(state, WAIT) is None and settled(state)


def test_talk_of_exactly_one_second_after_rounding_needs_a_recording() -> None:
    state, _ = step(None, ev("call.started", "s", 0, record=True), ev("call.answered", "a", 5),
                    ev("call.ended", "e", 5.9995))
    assert recording_due(state, WAIT) is not None


def test_a_late_answer_makes_a_checked_call_raise_at_once() -> None:
    state, _ = step(None, ev("call.started", "s", 0, record=True), ev("call.ended", "e", 65))
    state, out = check_recording(state, SIMPLE_TARIFFS, RULES)
    assert out.alerts == []
    state, out = step(state, ev("call.answered", "a", 5))
    assert "recording_missing:call-1" in _alerts(out)


def test_the_bookkeeping_survives_the_state_bytes() -> None:
    state, _ = step(None, *RECORDED_CALL, now=1234.5)
    state = state_from_bytes(state_to_bytes(state))
    assert recording_due(state, WAIT) == 1234.5 + WAIT
    state, _ = check_recording(state, SIMPLE_TARIFFS, RULES)
    assert recording_due(state_from_bytes(state_to_bytes(state)), WAIT) is None


def test_random_batchings_of_one_log_order_agree_on_the_final_cdr_and_version() -> None:
    rng = random.Random(7)
    events = [ev("call.started", "s", 0), ev("call.answered", "a", 3), ev("call.ended", "e", 65)]
    events += [recording(i, 66 + i, bytes=i, seconds=Decimal("0.5")) for i in range(300)]
    rng.shuffle(events)
    outcomes = set()
    for _ in range(20):
        order = events[:]
        state, last = None, None
        while order:
            cut = rng.randint(1, len(order))
            state, out = step(state, *order[:cut])
            order = order[cut:]
            last = out.cdrs[-1] if out.cdrs else last
        outcomes.add(last)
    assert outcomes == {cdr_to_json(build_cdr(events, SIMPLE_TARIFFS), state.version)}
