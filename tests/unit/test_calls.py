"""One call's step in the worker (``streams.domain.calls``): versions, alerts, signals, expiry."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.alerts import AlertRules, alert_to_json, call_alerts
from streams.domain.calls import RETRACTED, Outputs, advance, expire, expiry_due, needs_expiry, settled
from streams.domain.cdr import build_cdr, state_of_events
from streams.domain.cdr_json import cdr_to_dict, cdr_to_json
from streams.domain.outages import PortalSignal, signal_of
from streams.domain.state import is_complete, state_from_bytes, state_to_bytes
from tests.unit.call_samples import SIMPLE_TARIFFS, T0, batched, call_scenarios, ev

pytestmark = pytest.mark.unit

HOUR_US = 3_600_000_000
RULES = AlertRules()
AFTER = 4 * 3600.0  # the contract's default incomplete-timeout
NOW = 1_764_064_800.25


def step(state, *events, now: float = NOW, partition: int = 3):
    return advance(state, list(events), SIMPLE_TARIFFS, RULES, now, partition)


def cdrs(outputs: Outputs) -> list[dict[str, Any]]:
    return [orjson.loads(c) for c in outputs.cdrs]


def alert_ids(outputs: Outputs) -> list[str]:
    return [orjson.loads(payload)["alert_id"] for _, payload in outputs.alerts]


def expected_cdr(events, version: int, incomplete: bool = False) -> bytes:
    return cdr_to_json(build_cdr(events, SIMPLE_TARIFFS, incomplete=incomplete), version)


STARTED = ev("call.started", "s", 0)
ANSWERED = ev("call.answered", "a", 5)
ENDED = ev("call.ended", "e", 65)
REPLIED = ev("controller.replied", "r", 0.2, result="ok")
RECORDED = ev("recording.stored", "rec", 66)


# --- CDR versions ------------------------------------------------------------------

def test_no_cdr_before_both_started_and_ended_then_one_version_per_event() -> None:
    state, out = step(None, ev("controller.requested", "q", 0.1))
    assert out.cdrs == [] and state is not None
    state, out = step(state, REPLIED)
    assert out.cdrs == []
    state, out = step(state, STARTED)
    assert out.cdrs == [] and state.version == 0
    seen = [ev("controller.requested", "q", 0.1), REPLIED, STARTED]
    for version, event in enumerate([ENDED, ANSWERED, RECORDED], start=1):
        seen.append(event)
        state, out = step(state, event)
        assert out.cdrs == [expected_cdr(seen, version)]
        assert state.version == version
    assert cdrs(out)[0]["status"] == "answered" and cdrs(out)[0]["recording_urls"] == [
        "https://rec.example/1.mp3"]


def test_ended_before_started_emits_version_one_on_started() -> None:
    state, out = step(None, ENDED)
    assert out.cdrs == []
    state, out = step(state, STARTED)
    assert out.cdrs == [expected_cdr([ENDED, STARTED], 1)]
    assert cdrs(out)[0]["status"] == "missed"


def test_one_batch_emits_one_cdr_whose_version_counts_the_changing_events() -> None:
    # Contract v1.1: at most one CDR version per batch. The version still counts
    # the distinct events since completion, so it does not depend on batching.
    batch = [STARTED, ANSWERED, ENDED, ANSWERED, RECORDED, ev("call.forwarded", "f", 3), ENDED]
    state, out = step(None, *batch)
    assert out.cdrs == [expected_cdr(batch[:6], 3)]
    assert state.version == 3 and cdrs(out)[0]["events"] == 5


def test_the_version_of_a_set_of_events_does_not_depend_on_the_batching() -> None:
    events = [STARTED, ANSWERED, ENDED, RECORDED, ev("call.forwarded", "f", 3)]
    whole, out = step(None, *events)
    assert [c["version"] for c in cdrs(out)] == [3]
    state, versions = None, []
    for event in events:
        state, out = step(state, event)
        versions += [c["version"] for c in cdrs(out)]
    assert versions == [1, 2, 3] and state == whole


def test_a_hot_call_costs_one_cdr_per_batch() -> None:
    # Finding 2 of issue 12: 10,000 recordings in one batch made 9,999 CDR versions.
    recordings = [ev("recording.stored", f"r{i:05d}", 66 + i / 1000, url=f"https://rec.example/{i}.mp3",
                     bytes=1, seconds=1) for i in range(10_000)]
    state, out = step(None, STARTED, ANSWERED, ENDED, *recordings)
    assert len(out.cdrs) == 1 and len(out.cdrs[0]) < 20_000
    cdr = cdrs(out)[0]
    assert cdr["version"] == 9_998 and cdr["events"] == 10_000  # the cap: 10,000 distinct events
    assert len(cdr["recording_urls"]) == 100 and cdr["recording_bytes"] == 9_997


def test_a_batch_of_duplicates_changes_nothing_and_emits_nothing() -> None:
    state, _ = step(None, STARTED, ANSWERED, ENDED, ev("controller.bypassed", "b", 1))
    for batch in ([STARTED], [ENDED, ANSWERED, ENDED], [ev("controller.bypassed", "b", 1)]):
        again, out = step(state, *batch, now=NOW + 99, partition=7)
        assert again is None and out == Outputs()


def test_a_redelivered_event_id_with_another_payload_is_still_a_duplicate() -> None:
    state, _ = step(None, STARTED, ENDED)
    again, out = step(state, ev("call.ended", "e", 1, cause="busy"))
    assert again is None and out == Outputs()


def test_touched_at_and_partition_are_set_by_a_changing_batch() -> None:
    state, _ = step(None, STARTED, now=100.5, partition=4)
    assert (state.touched_at, state.partition) == (100.5, 4)
    state, _ = step(state, ENDED, now=200.25, partition=4)
    assert (state.touched_at, state.partition) == (200.25, 4)


def test_the_cdr_of_a_call_stays_identical_through_state_bytes() -> None:
    state, _ = step(None, STARTED, ANSWERED)
    revived = state_from_bytes(state_to_bytes(state))
    direct, out_direct = step(state, ENDED)
    via_bytes, out_bytes = step(revived, ENDED)
    assert out_bytes == out_direct and via_bytes == direct


# --- alerts --------------------------------------------------------------------------

def test_alerts_are_emitted_once_and_only_again_when_they_change() -> None:
    state, out = step(None, ev("call.started", "s", 0, portal="p7"),
                      ev("controller.bypassed", "b2", 2, key_saved_at_us=T0 - HOUR_US))
    assert alert_ids(out) == ["controller_bypassed:call-1"]
    assert [portal for portal, _ in out.alerts] == ["p7"]
    # A later bypass with a fresh key changes no alert.
    state, out = step(state, ev("controller.bypassed", "b3", 3, key_saved_at_us=T0 - HOUR_US))
    assert out.alerts == []
    # An earlier bypass changes controller_bypassed; its 30 h old key raises stale_key.
    state, out = step(state, ev("controller.bypassed", "b1", 1, key_saved_at_us=T0 - 30 * HOUR_US))
    assert alert_ids(out) == ["controller_bypassed:call-1", "stale_key:call-1"]
    assert orjson.loads(out.alerts[0][1])["ts"] == "2026-11-25T10:00:01.000Z"
    # An even older key on a later bypass changes only stale_key.
    state, out = step(state, ev("controller.bypassed", "b4", 4, key_saved_at_us=T0 - 40 * HOUR_US))
    assert alert_ids(out) == ["stale_key:call-1"]
    assert orjson.loads(out.alerts[0][1])["detail"]["key_age_s"] == 40 * 3600 + 4
    # Events that touch no alert input emit CDRs only (one per batch).
    state, out = step(state, ev("call.ended", "e", 9), RECORDED)
    assert out.alerts == [] and len(out.cdrs) == 1 and cdrs(out)[0]["version"] == 2


def test_the_same_events_again_emit_nothing() -> None:
    events = [ev("call.started", "s", 0, extranet=True, line="sip", to="+12125550100"),
              ev("controller.bypassed", "b", 1, key_saved_at_us=T0 - 30 * HOUR_US),
              ev("controller.replied", "r", 2, result="config_not_found"), ANSWERED, ENDED]
    state, out = step(None, *events)
    assert sorted(alert_ids(out)) == sorted([
        "controller_bypassed:call-1", "stale_key:call-1", "config_not_found:call-1",
        "extranet_call:call-1", "unrated_call:call-1"])
    assert step(state, *events) == (None, Outputs())
    assert step(state_from_bytes(state_to_bytes(state)), *reversed(events)) == (None, Outputs())


def test_alert_payloads_are_the_alert_rules_json() -> None:
    events = [ev("call.started", "s", 0, to="+12125550100"), ANSWERED, ENDED,
              ev("controller.replied", "r", 2, result="license_error")]
    _, out = step(None, *events)
    state = state_of_events(events)
    expected = [(a.portal_id, alert_to_json(a)) for a in call_alerts(state, build_cdr(events, SIMPLE_TARIFFS), RULES)]
    assert out.alerts == expected


def test_an_alert_raised_before_call_started_moves_to_the_started_portal() -> None:
    state, out = step(None, ev("controller.replied", "r", 1, portal="p-first", result="license_error"))
    assert [p for p, _ in out.alerts] == ["p-first"]
    state, out = step(state, ev("call.started", "s", 0, portal="p-real"))
    assert [(p, orjson.loads(a)["alert_id"]) for p, a in out.alerts] == [("p-real", "license_error:call-1")]


def test_unrated_call_is_raised_when_the_cdr_shows_it() -> None:
    state, out = step(None, ev("call.started", "s", 0, to="+12125550100"), ANSWERED)
    assert out.alerts == []
    state, out = step(state, ENDED)
    assert alert_ids(out) == ["unrated_call:call-1"]
    _, out = step(state, RECORDED)
    assert out.alerts == [] and len(out.cdrs) == 1


# --- the portal signal -----------------------------------------------------------------

def test_the_signal_goes_out_only_when_the_verdict_or_its_ts_changes() -> None:
    state, out = step(None, ev("controller.replied", "r2", 2, portal="p4"))
    assert out.signal == PortalSignal("p4", "call-1", "checked", T0 + 2_000_000)
    state, out = step(state, ev("controller.replied", "r3", 3))
    assert out.signal is None
    state, out = step(state, ev("call.started", "s", 0, portal="p4"), ev("controller.replied", "r1", 1))
    assert out.signal == PortalSignal("p4", "call-1", "checked", T0 + 1_000_000)
    state, out = step(state, ev("controller.bypassed", "b2", 5, portal="p4"))
    assert out.signal == PortalSignal("p4", "call-1", "bypassed", T0 + 5_000_000)
    state, out = step(state, ev("controller.bypassed", "b3", 6), ev("controller.replied", "r0", 0.5))
    assert out.signal is None
    state, out = step(state, ev("controller.bypassed", "b1", 4))
    assert out.signal == PortalSignal("p4", "call-1", "bypassed", T0 + 4_000_000)
    _, out = step(state_from_bytes(state_to_bytes(state)), ENDED, RECORDED)
    assert out.signal is None


def test_no_signal_without_a_verdict() -> None:
    _, out = step(None, STARTED, ev("controller.requested", "q", 1), ENDED)
    assert out.signal is None and len(out.cdrs) == 1


# --- expiry ----------------------------------------------------------------------------

def test_an_incomplete_call_expires_once_after_the_timeout() -> None:
    state, _ = step(None, STARTED, ANSWERED, now=1000.0)
    assert not settled(state) and expiry_due(state, AFTER) == 1000.0 + AFTER
    assert not needs_expiry(state, 1000.0 + AFTER - 0.001, AFTER)
    assert needs_expiry(state, 1000.0 + AFTER, AFTER)
    expired, out = expire(state, SIMPLE_TARIFFS, RULES)
    assert out.cdrs == [expected_cdr([STARTED, ANSWERED], 1, incomplete=True)]
    cdr = cdrs(out)[0]
    assert (cdr["status"], cdr["ended_at"], cdr["talk_s"], cdr["duration_s"], cdr["ring_s"]) == (
        "incomplete", None, None, None, 5.0)
    assert out.alerts == [] and out.signal is None
    assert (expired.version, expired.touched_at, expired.partition) == (1, 1000.0, 3)
    for later in (1000.0 + AFTER, 1e12):
        assert not needs_expiry(expired, later, AFTER)
    assert expiry_due(expired, AFTER) is None and settled(expired)
    revived = state_from_bytes(state_to_bytes(expired))
    assert not needs_expiry(revived, 1e12, AFTER) and settled(revived)


def test_expiry_resends_no_alert_and_no_signal_already_sent() -> None:
    state, out = step(None, ev("call.ended", "e", 9, portal="p5"),
                      ev("controller.bypassed", "b", 1, portal="p5", key_saved_at_us=T0 - 30 * HOUR_US),
                      now=0.0)
    assert alert_ids(out) == ["controller_bypassed:call-1", "stale_key:call-1"]
    _, out = expire(state, SIMPLE_TARIFFS, RULES)
    assert out.alerts == [] and out.signal is None
    cdr = cdrs(out)[0]
    assert (cdr["portal_id"], cdr["version"], cdr["started_at"], cdr["status"], cdr["controller"]) == (
        "p5", 1, None, "incomplete", "bypassed")


def test_a_late_event_after_expiry_emits_the_next_incomplete_version_and_rearms_the_timeout() -> None:
    state, _ = step(None, STARTED, now=1000.0)
    state, _ = expire(state, SIMPLE_TARIFFS, RULES)
    state, out = step(state, ANSWERED, now=50_000.0)
    assert out.cdrs == [expected_cdr([STARTED, ANSWERED], 2, incomplete=True)]
    assert not settled(state) and expiry_due(state, AFTER) == 50_000.0 + AFTER
    assert not needs_expiry(state, 50_000.0 + AFTER - 1, AFTER)
    assert needs_expiry(state, 50_000.0 + AFTER, AFTER)
    state, out = expire(state, SIMPLE_TARIFFS, RULES)
    # A second quiet period re-emits the same incomplete content as the next version.
    assert out.cdrs == [expected_cdr([STARTED, ANSWERED], 3, incomplete=True)]
    assert settled(state) and not needs_expiry(state, 1e12, AFTER)


def test_the_missing_event_after_expiry_gives_the_real_status() -> None:
    state, _ = step(None, STARTED, ANSWERED, now=1000.0)
    state, _ = expire(state, SIMPLE_TARIFFS, RULES)
    state, out = step(state, ENDED, now=90_000.0)
    assert out.cdrs == [expected_cdr([STARTED, ANSWERED, ENDED], 2)]
    assert cdrs(out)[0]["status"] == "answered"
    assert settled(state) and expiry_due(state, AFTER) is None
    assert not needs_expiry(state, 1e12, AFTER)
    state, out = step(state, RECORDED, now=95_000.0)
    assert [c["version"] for c in cdrs(out)] == [3] and cdrs(out)[0]["status"] == "answered"


def test_a_complete_call_never_expires() -> None:
    state, _ = step(None, STARTED, ENDED, now=1000.0)
    for now in (1000.0, 1000.0 + AFTER, 1e12):
        assert not needs_expiry(state, now, AFTER)
    assert expiry_due(state, AFTER) is None and settled(state)


def test_a_call_with_no_cdr_yet_is_not_settled() -> None:
    state, _ = step(None, ENDED, now=5.0)
    assert not settled(state) and expiry_due(state, 60.0) == 65.0
    assert not needs_expiry(state, 64.999, 60.0) and needs_expiry(state, 65.0, 60.0)


# --- properties --------------------------------------------------------------------------

def _without_version(payload: bytes) -> dict[str, Any]:
    obj = orjson.loads(payload)
    del obj["version"]
    return obj


@settings(deadline=None, max_examples=300)
@given(st.data())
def test_any_batching_and_order_gives_the_set_form(data: Any) -> None:
    events = data.draw(call_scenarios(complete=data.draw(st.sampled_from([None, True]))))
    batches = data.draw(batched(events))
    through_bytes = data.draw(st.booleans())
    state, emitted, last_alert, last_signal = None, [], {}, None
    seen: set[str] = set()
    known = {"call.started": False, "call.ended": False}
    changing_after_completion = 0
    for batch in batches:
        for event in batch:
            if event.event_id not in seen:
                seen.add(event.event_id)
                if event.type in known:
                    known[event.type] = True
                changing_after_completion += all(known.values())
        new, out = advance(state, batch, SIMPLE_TARIFFS, RULES, 10.0, 0)
        if new is not None:
            state = state_from_bytes(state_to_bytes(new)) if through_bytes else new
        else:
            assert out == Outputs()
        assert len(out.cdrs) <= 1  # contract v1.1: at most one version per batch
        emitted += out.cdrs
        for portal, payload in out.alerts:
            obj = orjson.loads(payload)
            assert obj["portal_id"] == portal
            last_alert[obj["alert_id"]] = payload
        last_signal = out.signal or last_signal
    # The version counts the changing events once started and ended are both known,
    # whatever the batching; versions only grow.
    versions = [orjson.loads(c)["version"] for c in emitted]
    assert versions == sorted(set(versions))
    assert state.version == changing_after_completion == (versions[-1] if versions else 0)
    reference = state_of_events(events)
    if is_complete(reference):
        final = build_cdr(events, SIMPLE_TARIFFS)
        assert _without_version(emitted[-1]) == _without_version(cdr_to_json(final, 1))
        assert orjson.loads(emitted[-1]) == orjson.loads(orjson.dumps(cdr_to_dict(final, state.version)))
    else:
        final = None
        assert emitted == []
    expected = {a.alert_id: alert_to_json(a) for a in call_alerts(reference, final, RULES)}
    # An order can raise an alert that the full set no longer shows (a second call.started
    # or call.ended changing the winner); it is then withdrawn: the live ones are the set's.
    live = {i: p for i, p in last_alert.items() if orjson.loads(p)["detail"].get("state") != RETRACTED}
    assert live == expected
    expected_signal = signal_of(reference)
    if expected_signal is None:
        assert last_signal is None
    else:
        assert last_signal[1:] == expected_signal[1:]
        # The signal is re-sent on a new verdict or ts only: its portal is the one the
        # call had then (all events of a real call carry the same portal).
        if len({e.portal_id for e in events}) == 1:
            assert last_signal == expected_signal


@settings(deadline=None, max_examples=100)
@given(st.data())
def test_expiry_then_the_rest_of_the_events_converges_to_the_set_form(data: Any) -> None:
    events = data.draw(call_scenarios(complete=True))
    order = data.draw(st.permutations(events))
    cut = data.draw(st.integers(1, len(order)))
    state, out = advance(None, order[:cut], SIMPLE_TARIFFS, RULES, 0.0, 1)
    emitted = list(out.cdrs)
    if needs_expiry(state, AFTER, AFTER):
        state, out = expire(state, SIMPLE_TARIFFS, RULES)
        emitted += out.cdrs
        assert orjson.loads(out.cdrs[0])["status"] == "incomplete"
        assert not needs_expiry(state, 2 * AFTER, AFTER)
    else:
        assert is_complete(state)
    for event in order[cut:]:
        new, out = advance(state, [event], SIMPLE_TARIFFS, RULES, 2 * AFTER, 1)
        state = new or state
        emitted += out.cdrs
    versions = [orjson.loads(c)["version"] for c in emitted]
    assert versions == sorted(set(versions)) and versions[-1] == state.version
    assert _without_version(emitted[-1]) == _without_version(cdr_to_json(build_cdr(events, SIMPLE_TARIFFS), 1))
    assert not needs_expiry(state, 1e12, AFTER)


@pytest.mark.parametrize("events", [
    pytest.param([ev("call.started", "s1", 1, extranet=True, line="sip"),
                  ev("call.started", "s2", 0, extranet=False, line="sip"), ENDED],
                 id="extranet-call.started-superseded-by-an-earlier-one"),
    pytest.param([ev("call.started", "s", 0, to="+12125550100"), ev("call.answered", "a", 5),
                  ev("call.ended", "e1", 65), ev("call.ended", "e2", 5)],
                 id="unrated-talk-removed-by-an-earlier-call.ended"),
])
def test_every_arrival_order_ends_with_the_alert_ids_of_the_set(events: list) -> None:
    # An order that first folds the later call.started (extranet) or the later call.ended
    # (talk > 0, no tariff) raises extranet_call/unrated_call, which the set of events does
    # not: the alert is withdrawn (``retracted``) once the winning event arrives.
    expected = {a.alert_id for a in call_alerts(state_of_events(events), build_cdr(events, SIMPLE_TARIFFS), RULES)}
    assert expected == set()
    for order in itertools.permutations(events):
        state, latest = None, {}
        for event in order:
            new, out = advance(state, [event], SIMPLE_TARIFFS, RULES, 1.0, 0)
            state = new or state
            for _portal, payload in out.alerts:
                doc = orjson.loads(payload)
                latest[doc["alert_id"]] = doc["detail"].get("state")
        raised = {i for i, st in latest.items() if st != RETRACTED}
        assert raised == expected, f"arrival order {[e.event_id for e in order]}"
        assert {i.split(":")[0] for i in latest} <= {"extranet_call", "unrated_call"}
