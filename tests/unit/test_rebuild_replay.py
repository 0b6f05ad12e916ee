"""The rebuild's per-call replay (warehouse.replay): the worker's outputs, from the log alone."""

from __future__ import annotations

import random
from collections import defaultdict

import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from streams.domain.alerts import AlertRules, alert_to_json, call_alerts
from streams.domain.calls import advance, expire
from streams.domain.cdr import build_cdr, state_of_events
from streams.domain.cdr_json import cdr_to_json
from streams.domain.dlq import dlq_record
from streams.domain.events import Event, Rejection
from streams.domain.outages import HORIZON_US, OutageState, PortalSignal, apply_signal, apply_signals
from streams.domain.rating import load_tariffs
from streams.domain.state import is_complete
from streams.domain.validation import validate
from streams.domain.wire import encode_event
from streams.simulator import Faults, Knobs, generate_all
from tests.unit.call_samples import T0, call_scenarios, ev
from warehouse.replay import PartitionReplay, ReplayConfig, outage_alerts

pytestmark = pytest.mark.unit

TOPIC = "call-events"
RULES = AlertRules()
TS_MS = 1_795_773_600_000  # broker time of every message unless a test says otherwise (after every ts)
AFTER = 4 * 3600.0


@pytest.fixture(scope="module")
def tariffs():
    from common.config import Settings

    return load_tariffs(Settings.from_env({}).tariffs_path)


@pytest.fixture(scope="module")
def simulated(tariffs):
    """A replayed partition of simulated traffic (duplicates, shuffles, late and malformed messages)."""
    messages, _ = generate_all(
        17, 400, 4, T0, Faults(duplicates=0.1, shuffle=0.4, late_recordings=0.3, malformed=0.03),
        Knobs(outage_rate=0.15, stale_key=0.3, license_errors=0.05, dev_copy=0.05, extranet=0.05))
    replay = PartitionReplay(ReplayConfig(tariffs, RULES, AFTER, TOPIC), 5)
    for offset, message in enumerate(messages):
        replay.feed(offset, TS_MS, message.key, message.value)
    valid, dlq = replay.take_rows()
    return messages, replay.finish(TS_MS / 1000), valid, dlq


def _events_by_call(messages) -> dict[str, list[Event]]:
    calls: dict[str, list[Event]] = defaultdict(list)
    for message in messages:
        result = validate(message.value, message.key)
        if isinstance(result, Event):
            calls[result.call_id].append(result)
    return calls


def _versions(events: list[Event], tariffs, batches: list[list[Event]]) -> int:
    """The last CDR version the worker sends for ``events`` handed to it in ``batches``."""
    state, last = None, 0
    for batch in batches:
        new, outputs = advance(state, batch, tariffs, RULES, 0.0, 5)
        assert len(outputs.cdrs) <= 1  # contract v1.1: one version per batch at most
        state = new or state
        last = max([last, *(orjson.loads(c)["version"] for c in outputs.cdrs)])
    return last


def test_every_call_ends_with_build_cdr_of_its_events_at_the_workers_last_version(simulated, tariffs):
    messages, outputs, _, _ = simulated
    calls = _events_by_call(messages)
    assert outputs.cdrs.keys() == calls.keys() and len(calls) == 400
    rng = random.Random(3)
    for call_id, events in calls.items():
        # However the worker batched the call's events, its last version is the same.
        cut = rng.randrange(len(events) + 1)
        version = _versions(events, tariffs, [[e] for e in events])
        assert version == _versions(events, tariffs, [events]) == \
            _versions(events, tariffs, [events[:cut], events[cut:]])
        expected = cdr_to_json(build_cdr(events, tariffs), version)
        assert outputs.cdrs[call_id] == expected, call_id
    assert outputs.incomplete == 0
    assert max(orjson.loads(c)["version"] for c in outputs.cdrs.values()) > 2  # late events seen


def test_per_call_alerts_are_the_rules_over_each_calls_final_state(simulated, tariffs):
    messages, outputs, _, _ = simulated
    expected = {}
    for events in _events_by_call(messages).values():
        state = state_of_events(events)
        for alert in call_alerts(state, build_cdr(events, tariffs), RULES):
            expected[alert.alert_id] = alert_to_json(alert)
    assert outputs.alerts == expected
    assert {orjson.loads(a)["type"] for a in expected.values()} >= {
        "controller_bypassed", "stale_key", "license_error", "config_not_found", "extranet_call"}


def test_rejections_are_the_workers_dlq_records_and_valid_events_are_kept_in_offset_order(simulated):
    messages, _, valid, dlq = simulated
    rejected = [(offset, m) for offset, m in enumerate(messages)
                if isinstance(validate(m.value, m.key), Rejection)]
    assert rejected and len(dlq) == len(rejected)
    for (offset, message), (timestamp_ms, value) in zip(rejected, dlq):
        reason = validate(message.value, message.key)
        assert timestamp_ms == TS_MS
        assert orjson.loads(value) == dlq_record(reason, TOPIC, 5, offset, message.value)
    assert [offset for _, offset, _ in valid] == sorted(offset for offset, m in enumerate(messages)
                                                        if isinstance(validate(m.value, m.key), Event))
    assert {partition for partition, _, _ in valid} == {5}


def _message(event: Event) -> tuple[bytes, bytes]:
    return event.call_id.encode(), encode_event(event)


def _replay(tariffs, timed: list[tuple[float, Event]], after: float = 2.0) -> PartitionReplay:
    replay = PartitionReplay(ReplayConfig(tariffs, RULES, after, TOPIC), 0)
    for offset, (at_s, event) in enumerate(timed):
        key, value = _message(event)
        replay.feed(offset, int((TS_MS / 1000 + at_s) * 1000), key, value)
    return replay


def test_a_call_quiet_past_the_timeout_is_expired_between_its_events_as_the_worker_does(tariffs):
    started, ended = ev("call.started", "s", 0, call="late"), ev("call.ended", "e", 60, call="late")
    outputs = _replay(tariffs, [(0.0, started), (5.0, ended)]).finish(TS_MS / 1000 + 10)
    # The worker: started at t, swept at t + 2 s (incomplete v1), ended at t + 5 s (v2).
    state, _ = advance(None, [started], tariffs, RULES, 0.0, 0)
    state, first = expire(state, tariffs, RULES)
    _, second = advance(state, [ended], tariffs, RULES, 5.0, 0)
    assert [orjson.loads(c)["status"] for c in first.cdrs + second.cdrs] == ["incomplete", "missed"]
    assert outputs.cdrs["late"] == second.cdrs[-1]
    assert orjson.loads(outputs.cdrs["late"])["version"] == 2
    quick = _replay(tariffs, [(0.0, started), (1.0, ended)]).finish(TS_MS / 1000 + 10)
    assert orjson.loads(quick.cdrs["late"])["version"] == 1


def test_broker_time_never_goes_back_for_the_replayed_clock(tariffs):
    a, b = ev("call.started", "a1", 0, call="a"), ev("call.started", "b1", 0, call="b")
    b_end = ev("call.ended", "b2", 30, call="b")
    # b's end carries an older broker timestamp than a's start: the clock stays at 5 s, so b
    # (started at 0 s) was quiet 5 s > 2 s and is expired before its end, like the worker would.
    outputs = _replay(tariffs, [(0.0, b), (5.0, a), (0.5, b_end)]).finish(TS_MS / 1000 + 5.5)
    assert orjson.loads(outputs.cdrs["b"])["version"] == 2
    assert "a" not in outputs.cdrs  # a started 0.5 s before the snapshot: in flight


def test_at_the_snapshot_quiet_incomplete_calls_expire_and_calls_in_flight_send_nothing(tariffs):
    started = ev("call.started", "s", 0, call="open")
    replay = _replay(tariffs, [(0.0, started)], after=AFTER)
    assert replay.finish(TS_MS / 1000 + AFTER - 1).cdrs == {}
    replay = _replay(tariffs, [(0.0, started)], after=AFTER)
    outputs = replay.finish(TS_MS / 1000 + AFTER)
    assert orjson.loads(outputs.cdrs["open"])["status"] == "incomplete" and outputs.incomplete == 1
    assert outputs.cdrs["open"] == cdr_to_json(build_cdr([started], tariffs, incomplete=True), 1)


@settings(max_examples=60, deadline=None)
@given(call_scenarios(), st.randoms(use_true_random=False))
def test_any_order_and_any_copies_end_in_build_cdr_of_the_set(tariffs, events, rng):
    sent = events + [rng.choice(events) for _ in range(rng.randrange(3))]
    rng.shuffle(sent)
    outputs = _replay(tariffs, [(0.0, e) for e in sent], after=AFTER).finish(TS_MS / 1000 + AFTER)
    # What reaches the call is what the wire format keeps (some drawn payloads go to the DLQ).
    sent = [e for e in (validate(_message(e)[1]) for e in sent) if isinstance(e, Event)]
    assume(sent)
    complete = is_complete(state_of_events(sent))
    version = _versions(sent, tariffs, [sent]) + (0 if complete else 1)  # + the sweep's expiry
    assert outputs.cdrs["call-1"] == cdr_to_json(build_cdr(sent, tariffs, incomplete=not complete), version)


def _bursts(days: int) -> list[PortalSignal]:
    """Every 3 h: six bypassed calls within a minute, then a checked call ten minutes later."""
    signals, s = [], 1_000_000
    for burst in range(days * 8):
        at = T0 + burst * 3 * 3600 * s
        signals += [PortalSignal("p1", f"b{burst}-{i}", "bypassed", at + i * 10 * s) for i in range(6)]
        signals.append(PortalSignal("p1", f"c{burst}", "checked", at + 600 * s))
        signals.append(PortalSignal("p2", f"q{burst}", "checked", at + 5 * s))
    return sorted(signals, key=lambda x: (x.portal_id, x.ts_us, x.call_id))


def _latest(sent) -> dict[str, bytes]:
    return {alert.alert_id: payload for alert, payload in sent}


def test_outages_are_those_of_the_live_machine_fed_in_event_time_order():
    signals = _bursts(days=2)
    live: dict[str, bytes] = {}
    state = None
    for signal in (s for s in signals if s.portal_id == "p1"):
        state, sent = apply_signal(state, signal, RULES)
        live.update(_latest(sent))
    rebuilt = outage_alerts(signals, RULES)
    assert rebuilt == live and len(rebuilt) == 16
    assert {orjson.loads(a)["detail"]["state"] for a in rebuilt.values()} == {"resolved"}
    # Fed all at once, the machine freezes verdicts beyond its horizon unseen: hence the slices.
    _, at_once = apply_signals(OutageState("p1"), [s for s in signals if s.portal_id == "p1"], RULES)
    assert len(_latest(at_once)) < len(rebuilt)
    assert signals[-1].ts_us - signals[0].ts_us > 2 * HORIZON_US


# --- contract v1.1 and bounded memory (issue 12) ----------------------------------------------

def _feed_all(replay: PartitionReplay, messages, ts_ms: int = TS_MS) -> tuple:
    """Feed everything, collecting what the replay hands over on the way and at the end."""
    outputs = []
    for offset, (key, value) in enumerate(messages):
        replay.feed(offset, ts_ms, key, value)
        outputs.append(replay.take_outputs())
    valid, dlq = replay.take_rows()
    outputs.append(replay.finish(ts_ms / 1000))
    merged = {"cdrs": {}, "alerts": {}, "signals": {}}
    for out in outputs:
        merged["cdrs"].update(out.cdrs)
        merged["alerts"].update(out.alerts)
        merged["signals"].update({s.call_id: s for s in out.signals})
    return merged, valid, dlq


def test_calls_leave_memory_for_disk_and_the_outputs_stay_those_of_an_all_in_memory_replay(tariffs):
    from warehouse.replay import CallSpill

    messages, _ = generate_all(23, 3000, 6, T0, Faults(duplicates=0.1, shuffle=0.4, late_recordings=0.5))
    pairs = [(m.key, m.value) for m in messages]
    whole, _, _ = _feed_all(PartitionReplay(ReplayConfig(tariffs, RULES, AFTER, TOPIC), 1), pairs)
    spill = CallSpill()
    try:
        small = PartitionReplay(ReplayConfig(tariffs, RULES, AFTER, TOPIC, max_hot=200), 1, spill)
        high = 0
        for offset, pair in enumerate(pairs):
            small.feed(offset, TS_MS, *pair)
            high = max(high, len(small.hot))
        assert high <= 200 + 4096 // 4  # evicted every 4,096 messages, ~4 events per call
    finally:
        spill.close()
    spill = CallSpill()
    try:
        bounded, _, _ = _feed_all(PartitionReplay(ReplayConfig(tariffs, RULES, AFTER, TOPIC, max_hot=200),
                                                  1, spill), pairs)
    finally:
        spill.close()
    assert bounded == whole and len(whole["cdrs"]) == 3000


def test_a_keyless_event_is_a_row_but_is_folded_only_through_its_keyed_copy(tariffs):
    started, ended = ev("call.started", "s", 0), ev("call.ended", "e", 60)
    replay = PartitionReplay(ReplayConfig(tariffs, RULES, AFTER, TOPIC), 0)
    replay.feed(0, TS_MS, None, encode_event(started))
    replay.feed(1, TS_MS, None, encode_event(ended))
    assert replay.rekeyed == 2 and len(replay.take_rows()[0]) == 2
    assert replay.finish(TS_MS / 1000).cdrs == {}


def test_events_beyond_the_cap_are_dlq_records_of_call_too_large(tariffs):
    events = [ev("call.started", "s", 0)] + [ev("call.offered", f"o{i:04d}", 1, attempt=i + 1)
                                             for i in range(150)] + [ev("call.ended", "e", 60)]
    replay = PartitionReplay(ReplayConfig(tariffs, RULES, AFTER, TOPIC, max_events=100), 0)
    merged, valid, dlq = _feed_all(replay, [_message(e) for e in events])
    assert len(valid) == 152  # every valid event is a row of ``events``
    reasons = [orjson.loads(record)["reason"] for _, record in dlq]
    assert reasons == ["call_too_large"] * 52 and orjson.loads(dlq[0][1])["offset"] == 100
    assert merged["cdrs"] == {}  # call.ended was beyond the cap


def test_the_replay_judges_ts_against_each_message_time(tariffs):
    started = ev("call.started", "s", 0)
    replay = PartitionReplay(ReplayConfig(tariffs, RULES, AFTER, TOPIC), 0)
    replay.feed(0, started.ts_us // 1000 - 25 * 3600 * 1000, *_message(started))
    assert [orjson.loads(r)["reason"] for _, r in replay.take_rows()[1]] == ["bad_field:ts"]


def test_recording_missing_takes_the_set_form_at_the_end(tariffs):
    from streams.domain.shared import RECORDING_CHECKED_KEY

    events = [ev("call.started", "s", 0, record=True), ev("call.answered", "a", 3), ev("call.ended", "e", 65)]
    outputs = _replay(tariffs, [(0.0, e) for e in events], after=AFTER).finish(TS_MS / 1000 + 1)
    assert orjson.loads(outputs.alerts["recording_missing:call-1"])["type"] == "recording_missing"
    state = state_of_events(events)
    expected = call_alerts(state._replace(emitted={RECORDING_CHECKED_KEY: True}), build_cdr(events, tariffs), RULES)
    assert {a.alert_id: alert_to_json(a) for a in expected} == outputs.alerts
    late = _replay(tariffs, [(0.0, e) for e in events] + [
        (7200.0, ev("recording.stored", "r", 70))], after=AFTER).finish(TS_MS / 1000 + 7201)
    # The wait passed in broker time before the recording came: raised, then retracted.
    assert orjson.loads(late.alerts["recording_missing:call-1"])["detail"] == {"state": "retracted"}


def test_feed_many_folds_as_feed_one_by_one(tariffs):
    """The partition reader hands batches (feed_many) cut anywhere, across chunk borders."""
    messages, _ = generate_all(29, 200, 4, T0, Faults(duplicates=0.1, shuffle=0.4, malformed=0.03), Knobs())
    config = ReplayConfig(tariffs, RULES, AFTER, TOPIC, chunk=64)
    one, many = PartitionReplay(config, 1), PartitionReplay(config, 1)
    records = [(offset, TS_MS + offset, m.key, m.value) for offset, m in enumerate(messages)]
    for record in records:
        one.feed(*record)
    cuts = random.Random(3).sample(range(1, len(records)), 20)
    for start, end in zip([0, *sorted(cuts)], [*sorted(cuts), len(records)]):
        many.feed_many(records[start:end])
    assert [(p, o) for p, o, _ in one.take_rows()[0]] == [(p, o) for p, o, _ in many.take_rows()[0]]
    assert one.messages == many.messages and one.rejected == many.rejected
    now = TS_MS / 1000 + 2 * AFTER
    a, b = one.finish(now), many.finish(now)
    assert a.cdrs == b.cdrs and a.alerts == b.alerts and a.signals == b.signals
