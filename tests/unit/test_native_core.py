"""The compiled core (``native/``) against the Python core: the same bytes out, or it declines.

Both cores see the same messages. Wherever the compiled one takes a step it
must send exactly the CDR and alert bytes the Python core sends, the same
signal, and write state bytes identical to ``state_to_bytes``; so a call can
move between the cores from one batch to the next. ``callstream_native`` must
be installed (``make setup`` builds it): without it these tests fail, they
never skip.
"""

from __future__ import annotations

import hashlib
import sys
from decimal import Decimal
from typing import Any

import callstream_native
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.config import ConfigError, Settings
from common.errors import CliError
from streams.call_store import summary_of_bytes
from streams.domain.alerts import AlertRules
from streams.domain.calls import advance, check_recording, expire, expiry_due, recording_due
from streams.domain.events import Event, Rejection
from streams.domain.rating import parse_tariffs
from streams.domain.state import is_complete, state_from_bytes, state_to_bytes
from streams.domain.timefmt import format_ts_ms, parse_ts_us
from streams.domain.validation import validate
from streams.domain.wire import encode_event
from streams.native import Guard, native_core, native_summarize
from streams.simulator import Faults, Knobs, generate_all
from tests.unit.call_samples import TARIFFS, batched, call_scenarios, ev

pytestmark = pytest.mark.unit

RULES = AlertRules()
# Rows that make every rating branch reachable: fees, increments, minimums,
# several valid_from versions, an empty prefix, a zero rate.
TABLE = parse_tariffs(
    "line,direction,prefix,region,rate_per_min,connect_fee,increment_s,min_s,currency,valid_from\n"
    "operator,outbound,7,Russia,1.50,0.30,60,0,RUB,2026-01-01T00:00:00Z\n"
    "operator,outbound,7,Russia,1.75,0.30,60,0,RUB,2026-11-25T12:00:00Z\n"
    "operator,outbound,77,Kazakhstan,7.333,0,1,61,RUB,2020-01-01T00:00:00Z\n"
    "rented,inbound,,Anywhere,0.5,0.05,6,30,RUB,2020-01-01T00:00:00Z\n"
    "rented,outbound,1,USA,0.00,1.005,30,0,USD,2020-01-01T00:00:00Z\n"
    "sip,outbound,49,Germany,2.125,0,10,10,EUR,2020-01-01T00:00:00Z\n")
CORE = native_core(Settings.from_env({}, native="on"), TABLE, RULES)
DEFAULT_CORE = native_core(Settings.from_env({}, native="on"), TARIFFS, RULES)


def native_events(events: list[Event]) -> list[Any] | None:
    """The compiled validator's events for the wire form of ``events``, or None if it declines one."""
    out = [callstream_native.validate(encode_event(e), e.call_id.encode()) for e in events]
    return None if any(n is None for n in out) else out


def signal_tuple(outputs) -> tuple | None:
    s = outputs.signal
    return None if s is None else (s.portal_id, s.call_id, s.verdict, s.ts_us)


def assert_same_step(py_state, batch, blob, natives, core, table, now: float, partition: int,
                     max_events: int = 10_000):
    """One step through both cores; returns (python state, native blob) afterwards."""
    new, outputs = advance(py_state, batch, table, RULES, now, partition, max_events)
    step = core.advance(blob, natives, now, partition)
    assert step is not None, "the compiled core declined a plain call"
    assert step.cdrs == outputs.cdrs and len(step.cdrs) <= 1
    assert step.alerts == outputs.alerts
    assert step.signal == signal_tuple(outputs)
    assert step.refused == outputs.refused
    track = (step.touched_at, step.version, step.done, step.recording_since)
    if new is None:
        assert step.state is None and track == (None, None, None, None)
        return py_state, blob
    assert step.state == state_to_bytes(new)
    assert state_from_bytes(step.state) == new
    assert track == (new.touched_at, new.version, expiry_due(new, 0.0) is None, recording_due(new, 0.0))
    return new, step.state


@settings(deadline=None, max_examples=400)
@given(st.data())
def test_any_batching_of_any_call_gives_the_same_bytes(data: Any) -> None:
    events = data.draw(call_scenarios(complete=data.draw(st.sampled_from([None, True]))))
    batches = data.draw(batched(events))
    table, core = data.draw(st.sampled_from([(TABLE, CORE), (TARIFFS, DEFAULT_CORE)]))
    py_state, blob = None, None
    for i, batch in enumerate(batches):
        # Both cores read the wire form (seconds, say, go through a JSON double);
        # the scenarios also hold values the wire refuses (a call to "voicemail").
        batch = [v for v in (validate(encode_event(e), e.call_id.encode()) for e in batch)
                 if type(v) is Event]
        natives = native_events(batch)
        if natives is None:
            # A value the compiled validator leaves to Python: that call goes the Python way.
            py_state, _ = advance(py_state, batch, table, RULES, 10.0 + i, 3)
            blob = None if py_state is None else state_to_bytes(py_state)
            continue
        py_state, blob = assert_same_step(py_state, batch, blob, natives, core, table, 10.0 + i, 3)


def test_simulated_events_are_all_taken_by_the_compiled_validator() -> None:
    # The properties here are only worth something if plain traffic never falls back.
    messages, _ = generate_all(3, 400, 8, parse_ts_us("2026-11-24T06:00:00Z"))
    assert all(callstream_native.validate(m.value, m.key) is not None for m in messages)


def run_stream(messages, core, table, *, batch: int, use_native: bool):
    """The worker's batch loop (streams/assemble.py) without Kafka: outputs and final states."""
    store: dict[str, bytes] = {}
    sent: list[tuple] = []
    for at in range(0, len(messages), batch):
        now = 1_764_000_000.0 + at
        pending: dict[str, list] = {}
        for m in messages[at:at + batch]:
            event = callstream_native.validate(m.value, m.key) if use_native else None
            native = event is not None
            if not native:
                event = validate(m.value, m.key)
                if isinstance(event, Rejection):
                    sent.append(("dlq", m.key, event.reason, event.error))
                    continue
                # The compiled validator exists for plain traffic: it may leave only rejects to Python.
                assert not use_native, f"the compiled validator declined a valid simulated event: {m.value[:200]!r}"
            item = pending.setdefault(event.call_id, [store.get(event.call_id), [], True])
            item[1].append(event)
            item[2] = item[2] and native
        for call_id, (blob, events, native) in pending.items():
            if use_native and native:
                step = core.advance(blob, events, now, 0)
                assert step is not None, f"the compiled core declined plain traffic (call {call_id})"
                sent.extend(("cdr", c) for c in step.cdrs)
                sent.extend(("alert",) + a for a in step.alerts)
                sent.append(("signal", step.signal))
                if step.state is not None:
                    store[call_id] = step.state
                continue
            events = [e if type(e) is Event else validate(e.value, e.key) for e in events]
            state, outputs = advance(None if blob is None else state_from_bytes(blob), events,
                                     table, RULES, now, 0)
            sent.extend(("cdr", c) for c in outputs.cdrs)
            sent.extend(("alert",) + a for a in outputs.alerts)
            sent.append(("signal", signal_tuple(outputs)))
            if state is not None:
                store[call_id] = state_to_bytes(state)
    return sent, store


@pytest.mark.parametrize("seed,faults", [
    (1, Faults()),
    (2, Faults(duplicates=0.2, shuffle=0.5, late_recordings=0.3, malformed=0.05)),
])
def test_simulated_traffic_gives_the_same_messages_and_states(seed: int, faults: Faults) -> None:
    knobs = Knobs(outage_rate=0.1, stale_key=0.3, license_errors=0.02, dev_copy=0.05, extranet=0.05)
    messages, _ = generate_all(seed, 1500, 12, parse_ts_us("2026-11-24T06:00:00Z"), faults, knobs)
    for batch in (1, 97, 500):
        python = run_stream(messages, DEFAULT_CORE, TARIFFS, batch=batch, use_native=False)
        native = run_stream(messages, DEFAULT_CORE, TARIFFS, batch=batch, use_native=True)
        assert native[0] == python[0]
        assert native[1] == python[1]
    assert any(kind == "alert" for kind, *_ in python[0])


# --- the pieces --------------------------------------------------------------------------

@given(st.binary(max_size=300))
def test_digest_is_blake2b_of_eight_bytes(payload: bytes) -> None:
    assert callstream_native.debug_digest(payload) == hashlib.blake2b(payload, digest_size=8).hexdigest()


@given(st.integers(parse_ts_us("0001-01-01T00:00:00Z"), parse_ts_us("9999-12-31T23:59:59.999999Z")))
def test_timestamps_format_as_the_python_core_does(ts_us: int) -> None:
    assert callstream_native.debug_format_ts_ms(ts_us) == format_ts_ms(ts_us)
    text = format_ts_ms(ts_us)
    assert callstream_native.debug_parse_ts_us(text) == parse_ts_us(text)


@pytest.mark.parametrize("text", [
    "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2026-11-24t06:00:00.5z", "2026-11-24T24:00:00Z",
    "2026-11-24T23:59:60Z", "0000-01-01T00:00:00Z", "2026-11-24T06:00:00.1234567Z",
    "2026-11-24T06:00:00+01:00", "2026-11-24T06:00:00+00:00", "2026-13-01T00:00:00Z",
    "1900-02-29T00:00:00Z", "2000-02-29T00:00:00.000001Z", "2026-11-24T06:00:00.Z",
])
def test_timestamp_edges_parse_as_the_python_core_does(text: str) -> None:
    assert callstream_native.debug_parse_ts_us(text) == parse_ts_us(text)


@given(st.floats(min_value=0.0, allow_nan=False, allow_infinity=False))
def test_float_seconds_become_the_decimal_of_their_repr(x: float) -> None:
    got = callstream_native.debug_float_decimal(x)
    if got is not None:  # None: beyond the compiled core's range, left to Python
        assert got == str(Decimal(repr(x + 0.0)))


@pytest.mark.parametrize("x", [0.0, -0.0, 12.0, 12.5, 1e15, 1e16, 1.5e-7, 0.0001, 0.00012, 123456.789,
                               9007199254740993.0, 1e-4, 99999999999999.99])
def test_float_seconds_edges(x: float) -> None:
    assert callstream_native.debug_float_decimal(x) == str(Decimal(repr(x + 0.0)))


def test_state_bytes_written_by_the_python_core_read_back_identically() -> None:
    messages, _ = generate_all(4, 300, 5, parse_ts_us("2026-11-24T06:00:00Z"),
                               Faults(duplicates=0.2, shuffle=0.5, late_recordings=0.3))
    _, store = run_stream(messages, DEFAULT_CORE, TARIFFS, batch=50, use_native=False)
    assert store
    for blob in store.values():
        assert callstream_native.debug_state_roundtrip(blob) == blob


def test_state_summaries_are_the_python_core_s() -> None:
    messages, _ = generate_all(6, 300, 5, parse_ts_us("2026-11-24T06:00:00Z"),
                               Faults(duplicates=0.2, shuffle=0.5, late_recordings=0.3))
    # Cut the traffic short so that some calls are incomplete, and expire some of those.
    _, store = run_stream(messages[: len(messages) // 2], DEFAULT_CORE, TARIFFS, batch=50,
                          use_native=False)
    blobs = list(store.values())
    for blob in list(blobs):
        state = state_from_bytes(blob)
        if not is_complete(state):
            blobs.append(state_to_bytes(expire(state, TARIFFS, RULES)[0]))
    summaries = [native_summarize(DEFAULT_CORE)(blob) for blob in blobs]
    assert summaries == [summary_of_bytes(blob) for blob in blobs]
    done = [s.done for s in summaries]
    assert any(done) and not all(done)
    assert any(s.done and not is_complete(state_from_bytes(b)) for s, b in zip(summaries, blobs))


# --- contract v1.1 in both cores ------------------------------------------------------------

SMALL_CORE = native_core(Settings.from_env({}, native="on", max_call_events=100), TABLE, RULES)


def test_both_cores_declare_the_same_limits() -> None:
    from streams.domain import shared as limits
    from streams.domain import validation

    assert callstream_native.LIMITS == (limits.MAX_CALL_EVENTS, limits.MAX_RECORDING_URLS,
                                        limits.MAX_TEXT_CHARS, validation.MAX_AHEAD_US,
                                        validation.EARLIEST_TS_US)


def _offers(count: int, first: int = 0) -> list[Event]:
    return [ev("call.offered", f"o{i:05d}", 1 + i / 1000, attempt=i + 1) for i in range(first, first + count)]


def test_the_event_cap_refuses_the_same_events_in_both_cores() -> None:
    batches = [[ev("call.started", "s", 0), *_offers(60)], [*_offers(60, 60), ev("call.ended", "e", 9)],
               [*_offers(10), ev("call.ended", "e", 9), *_offers(5, 200)]]
    py_state, blob = None, None
    for i, batch in enumerate(batches):
        natives = native_events(batch)
        assert natives is not None
        py_state, blob = assert_same_step(py_state, batch, blob, natives, SMALL_CORE, TABLE, 5.0 + i, 1,
                                          max_events=100)
    assert len(py_state.event_ids) == 100


def test_recording_missing_follows_the_same_bookkeeping_in_both_cores() -> None:
    started = ev("call.started", "s", 0, record=True, line="operator", to="+74951234567")
    answered, ended = ev("call.answered", "a", 3), ev("call.ended", "e", 65)
    recorded = ev("recording.stored", "r", 70, url="https://rec.example/1.mp3", bytes=10,
                  seconds=Decimal("1.5"))
    py_state, blob = assert_same_step(None, [started, ended], None, native_events([started, ended]),
                                      CORE, TABLE, 100.0, 2)
    # The wait passes (the Python core takes the sweep's command), then an answer arrives
    # late: the compiled core raises recording_missing as the Python core does ...
    py_state, _ = check_recording(py_state, TABLE, RULES)
    blob = state_to_bytes(py_state)
    py_state, blob = assert_same_step(py_state, [answered], blob, native_events([answered]), CORE, TABLE,
                                      200.0, 2)
    assert "recording_missing:call-1" in py_state.emitted
    # ... and retracts it when the recording arrives.
    py_state, blob = assert_same_step(py_state, [recorded], blob, native_events([recorded]), CORE, TABLE,
                                      300.0, 2)
    assert py_state.emitted["recording_missing:call-1"] == "retracted"


def test_a_hot_call_through_both_cores() -> None:
    recordings = [ev("recording.stored", f"r{i:05d}", 66 + (i % 500) / 10, url=f"https://rec.example/{i % 700}",
                     bytes=i, seconds=Decimal(i) / 4) for i in range(3000)]
    batch = [ev("call.started", "s", 0), ev("call.ended", "e", 65), *recordings]
    new, blob = assert_same_step(None, batch, None, native_events(batch), CORE, TABLE, 1.0, 0)
    assert len(new.urls) == 100


def test_message_time_bounds_decline_in_the_compiled_validator() -> None:
    event = ev("call.started", "s", 0)
    value, key = encode_event(event), event.call_id.encode()
    ts_ms = event.ts_us // 1000
    assert callstream_native.validate(value, key, ts_ms) is not None
    assert callstream_native.validate(value, key, ts_ms - 24 * 3600 * 1000) is not None
    assert callstream_native.validate(value, key, ts_ms - 24 * 3600 * 1000 - 1) is None
    assert validate(value, key, ts_ms - 24 * 3600 * 1000 - 1).reason == "bad_field:ts"
    assert callstream_native.validate(value, key, -1) is not None
    old = encode_event(event._replace(ts_us=parse_ts_us("1999-12-31T23:59:59Z")))
    assert callstream_native.validate(old, key) is None and validate(old, key).reason == "bad_field:ts"


@pytest.mark.parametrize("length", [2047, 2048, 2049, 5000])
def test_the_url_length_limit_is_the_python_core_s(length: int) -> None:
    head = "https://rec.example/"
    event = ev("recording.stored", "r", 70, url=head + "a" * (length - len(head)))
    value, key = encode_event(event), event.call_id.encode()
    accepted = isinstance(validate(value, key), Event)
    assert accepted == (length <= 2048)
    assert (callstream_native.validate(value, key) is not None) == accepted


def test_a_format_2_state_is_left_to_the_python_core() -> None:
    blob = b'[2,"c",["a"],[1,0,"p"],null,null,null,null,null,[],null,[],[[5,0,"https://r/1",3,"1.5"]],null,0,null,0.0,{}]'
    assert callstream_native.state_summary(blob) is None
    state = state_from_bytes(blob)
    assert state.urls == ((5, "https://r/1"),) and state.rec_bytes == 3
    assert callstream_native.debug_state_roundtrip(state_to_bytes(state)) == state_to_bytes(state)


@pytest.mark.parametrize("blob", [b"", b"[]", b"{}", b"[2]", b"not json", b"[3" + b",0" * 17 + b"]"])
def test_state_bytes_of_another_shape_are_declined(blob: bytes) -> None:
    assert callstream_native.debug_state_roundtrip(blob) is None
    assert callstream_native.state_summary(blob) is None


def test_a_panic_of_the_compiled_core_hands_the_input_to_the_python_core(caplog) -> None:
    # PyO3 raises a panic as a BaseException, past the agent's `except Exception`.
    assert not issubclass(callstream_native.PanicException, Exception)
    guard = Guard()
    with caplog.at_level("ERROR", logger="callstream.worker"):
        assert guard(callstream_native.debug_panic) is None
    assert guard.panics == 1
    assert "the Python core takes this input" in caplog.text
    assert guard(callstream_native.debug_digest, b"x") == hashlib.blake2b(b"x", digest_size=8).hexdigest()
    assert guard.panics == 1


def test_a_tariff_that_is_not_a_plain_decimal_is_refused() -> None:
    with pytest.raises(ValueError, match="rate_per_min"):
        callstream_native.Core([("operator", "outbound", "7", "R", "1E+2", "0", 60, 0, "RUB", 0)], 1)


# --- choosing the core ---------------------------------------------------------------------

def test_the_setting_chooses_the_core(monkeypatch, caplog) -> None:
    assert native_core(Settings.from_env({}, native="off"), TABLE, RULES) is None
    assert native_core(Settings.from_env({}), TABLE, RULES) is not None  # auto, and installed
    monkeypatch.setitem(sys.modules, "callstream_native", None)  # as if not installed
    with caplog.at_level("WARNING", logger="callstream.worker"):
        assert native_core(Settings.from_env({}), TABLE, RULES) is None
    assert "Python core only" in caplog.text
    with pytest.raises(CliError, match="CALLSTREAM_NATIVE=on, but the compiled core is not installed"):
        native_core(Settings.from_env({}, native="on"), TABLE, RULES)


def test_a_bad_native_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="CALLSTREAM_NATIVE='fast': must be auto, on or off"):
        Settings.from_env({"CALLSTREAM_NATIVE": "fast"})
