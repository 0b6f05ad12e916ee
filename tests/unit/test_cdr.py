"""Hand-computed CDRs: every field rule of contract v1, section "CDR"."""

from __future__ import annotations

from decimal import Decimal

import pytest

from streams.domain.cdr import STATUS_BY_CAUSE, build_cdr
from streams.domain.events import END_CAUSES
from streams.domain.state import fold
from streams.domain.timefmt import parse_ts_us
from tests.unit.call_samples import T0, TWO_LINE_TARIFFS, ev

pytestmark = pytest.mark.unit



def cdr(*events, incomplete=False):
    return build_cdr(list(events), TWO_LINE_TARIFFS, incomplete=incomplete)


def test_answered_outbound_call_every_field() -> None:
    c = cdr(ev("call.started", "s", 0, portal="p9", shown_number="+74950000000"),
            ev("controller.requested", "q", 0.1),
            ev("controller.replied", "r", 0.2, result="ok"),
            ev("call.answered", "a", 5.5, user_id="u2"),
            ev("call.ended", "e", at_us=T0 + 65_500_500, cause="normal", by="callee"))
    assert (c.call_id, c.portal_id, c.direction, c.line, c.from_, c.to) == (
        "call-1", "p9", "outbound", "operator", "user:u1", "+74951234567")
    assert (c.line_number, c.shown_number, c.extranet, c.user_id) == (None, "+74950000000", False, "u2")
    assert (c.started_at_us, c.answered_at_us, c.ended_at_us) == (T0, T0 + 5_500_000, T0 + 65_500_500)
    # talk = 60.0005 s -> 60.001 (half-up); t = 61 -> two 60 s increments.
    assert (c.ring_s, c.talk_s, c.duration_s) == (Decimal("5.500"), Decimal("60.001"), Decimal("65.501"))
    assert (c.status, c.hangup_cause, c.queue_attempts, c.forwarded_to) == ("answered", "normal", 0, None)
    assert (c.controller, c.controller_result) == ("checked", "ok")
    assert (c.region, c.rate_per_min, c.billed_s, c.cost, c.currency) == (
        "Russia", Decimal("1.50"), 120, Decimal("3.30"), "RUB")
    assert (c.recording_urls, c.recording_bytes, c.recording_s, c.events, c.unrated) == (
        (), 0, Decimal("0.000"), 5, False)


@pytest.mark.parametrize("cause", sorted(END_CAUSES))
def test_status_of_an_unanswered_call_follows_the_cause(cause: str) -> None:
    expected = {"busy": "busy", "no_answer": "missed", "normal": "missed", "rejected": "rejected",
                "forbidden": "rejected", "failed": "failed", "license_error": "failed",
                "config_not_found": "failed"}[cause]
    c = cdr(ev("call.started", "s", 0), ev("call.ended", "e", 12, cause=cause))
    assert c.status == expected == STATUS_BY_CAUSE[cause]
    assert (c.hangup_cause, c.ring_s, c.talk_s, c.answered_at_us) == (cause, Decimal("12.000"), Decimal("0.000"), None)


@pytest.mark.parametrize("cause", sorted(END_CAUSES))
def test_any_answer_makes_the_status_answered(cause: str) -> None:
    c = cdr(ev("call.started", "s", 0), ev("call.answered", "a", 1), ev("call.ended", "e", 2, cause=cause))
    assert (c.status, c.hangup_cause) == ("answered", cause)


def test_unanswered_call_with_a_connect_fee_costs_nothing() -> None:
    c = cdr(ev("call.started", "s", 0), ev("call.ended", "e", 30, cause="no_answer"))
    assert (c.region, c.billed_s, c.cost, c.unrated) == ("Russia", 0, Decimal("0.00"), False)


def test_negative_clock_skew_counts_as_zero() -> None:
    # answered before started, ended before answered, ended before started
    c = cdr(ev("call.started", "s", 10), ev("call.answered", "a", 9), ev("call.ended", "e", 8))
    assert (c.ring_s, c.talk_s, c.duration_s) == (Decimal("0.000"),) * 3
    assert (c.status, c.billed_s, c.cost, c.unrated) == ("answered", 0, Decimal("0.00"), False)


def test_earliest_answer_decides_user_and_answered_at_ties_by_event_id() -> None:
    c = cdr(ev("call.started", "s", 0, user_id="caller"), ev("call.answered", "b", 3, user_id="u-b"),
            ev("call.answered", "a", 3, user_id="u-a"), ev("call.answered", "0", 4, user_id="late"),
            ev("call.ended", "e", 9))
    assert (c.user_id, c.answered_at_us) == ("u-a", T0 + 3_000_000)
    unanswered = cdr(ev("call.started", "s", 0, user_id="caller"), ev("call.ended", "e", 9))
    assert unanswered.user_id == "caller"


def test_several_started_and_ended_events_use_the_earliest() -> None:
    c = cdr(ev("call.started", "s2", 1, to="+79990000000"), ev("call.started", "s1", 1, to="+74950000000"),
            ev("call.started", "s0", 2, to="+10000000000"), ev("call.ended", "e2", 20, cause="busy"),
            ev("call.ended", "e1", 15, cause="rejected"))
    assert (c.to, c.started_at_us, c.hangup_cause, c.status) == ("+74950000000", T0 + 1_000_000, "rejected", "rejected")
    assert c.duration_s == Decimal("14.000")


def test_forwarded_to_is_the_latest_forward_ties_by_event_id() -> None:
    c = cdr(ev("call.started", "s", 0), ev("call.forwarded", "f1", 5, to="+74951111111"),
            ev("call.forwarded", "f3", 7, to="voicemail"), ev("call.forwarded", "f2", 7, to="+74952222222"),
            ev("call.ended", "e", 9))
    assert c.forwarded_to == "voicemail"


@pytest.mark.parametrize(("extra", "controller", "result"), [
    ((), "none", None),
    ((("controller.requested", "q", 0, {}),), "none", None),
    ((("controller.replied", "r1", 1, {"result": "ok"}), ("controller.replied", "r2", 2, {"result": "license_error"})),
     "checked", "license_error"),
    ((("controller.bypassed", "b", 1, {}),), "bypassed", None),
    ((("controller.bypassed", "b", 1, {}), ("controller.replied", "r", 3, {"result": "config_not_found"})),
     "bypassed", "config_not_found"),
])
def test_controller_none_checked_bypassed(extra, controller, result) -> None:
    events = [ev("call.started", "s", 0), ev("call.ended", "e", 9)]
    events += [ev(kind, eid, at, **data) for kind, eid, at, data in extra]
    c = cdr(*events)
    assert (c.controller, c.controller_result) == (controller, result)


def test_queue_attempts_count_distinct_offered_attempts() -> None:
    c = cdr(ev("call.started", "s", 0, direction="inbound", line="rented", line_number="+74951234567"),
            ev("call.offered", "o1", 1, attempt=1, user_id="u1"), ev("call.offered", "o2", 2, attempt=1, user_id="u2"),
            ev("call.offer_missed", "m1", 3, attempt=1), ev("call.offered", "o3", 4, attempt=2),
            ev("call.offer_missed", "m2", 5, attempt=5), ev("call.offered", "o4", 6, attempt=3),
            ev("call.ended", "e", 9, cause="no_answer"))
    assert (c.queue_attempts, c.status, c.events) == (3, "missed", 8)


def test_recordings_urls_by_first_ts_then_url_and_sums_over_distinct_events() -> None:
    c = cdr(ev("call.started", "s", 0), ev("call.ended", "e", 100),
            ev("recording.stored", "r1", 50, url="https://r/b.mp3", bytes=100, seconds=Decimal("1.0005")),
            ev("recording.stored", "r2", 40, url="https://r/c.mp3", bytes=10, seconds=Decimal("2")),
            ev("recording.stored", "r3", 50, url="https://r/a.mp3", bytes=1, seconds=Decimal("0.0004")),
            ev("recording.stored", "r4", 60, url="https://r/c.mp3", bytes=10, seconds=Decimal("0.0001")))
    assert c.recording_urls == ("https://r/c.mp3", "https://r/a.mp3", "https://r/b.mp3")
    # the same url under two event ids counts twice; the sum is rounded once: 3.001
    assert (c.recording_bytes, c.recording_s) == (121, Decimal("3.001"))


def test_recording_seconds_sum_before_rounding() -> None:
    c = cdr(ev("call.started", "s", 0), ev("call.ended", "e", 1),
            ev("recording.stored", "r1", 1, seconds=Decimal("0.0004")),
            ev("recording.stored", "r2", 1, seconds=Decimal("0.0004")))
    assert c.recording_s == Decimal("0.001")


def test_duplicate_event_id_first_copy_wins_even_with_another_payload() -> None:
    busy, normal = ev("call.ended", "e", 9, cause="busy"), ev("call.ended", "e", 3, cause="normal")
    started = ev("call.started", "s", 0)
    assert (cdr(started, busy, normal).hangup_cause, cdr(started, busy, normal).events) == ("busy", 2)
    assert cdr(started, normal, busy).hangup_cause == "normal"
    state = None
    for event in (busy, started, normal, started):
        state, _ = fold(state, event)
    assert (state.ended.cause, len(state.event_ids)) == ("busy", 2)


def test_portal_is_the_started_events_else_the_earliest_events() -> None:
    c = cdr(ev("controller.replied", "r", -5, portal="other"), ev("call.started", "s", 0, portal="p1"),
            ev("call.ended", "e", 1, portal="p3"))
    assert c.portal_id == "p1"
    partial = cdr(ev("call.ended", "e", 1, portal="p3"), ev("controller.replied", "r", -5, portal="other"),
                  incomplete=True)
    assert partial.portal_id == "other"


def test_internal_call_is_not_looked_up() -> None:
    c = cdr(ev("call.started", "s", 0, direction="internal", line="internal", to="user:u2", user_id="u1"),
            ev("call.answered", "a", 1, user_id="u2"), ev("call.ended", "e", 600))
    assert (c.region, c.rate_per_min, c.billed_s, c.cost, c.currency, c.unrated) == (
        "internal", None, 0, Decimal("0.00"), None, False)


def test_incomplete_without_ended_fills_what_is_known() -> None:
    c = cdr(ev("call.started", "s", 0), ev("call.answered", "a", 4), incomplete=True)
    assert (c.status, c.ring_s, c.talk_s, c.duration_s, c.ended_at_us, c.hangup_cause) == (
        "incomplete", Decimal("4.000"), None, None, None, None)
    # rated only once talk_s is known, but the row is looked up
    assert (c.region, c.rate_per_min, c.currency, c.billed_s, c.cost, c.unrated) == (
        "Russia", Decimal("1.50"), "RUB", 0, Decimal("0.00"), False)
    only_started = cdr(ev("call.started", "s", 0), incomplete=True)
    assert (only_started.ring_s, only_started.talk_s, only_started.user_id) == (None, None, "u1")


def test_incomplete_without_started_fills_what_is_known() -> None:
    c = cdr(ev("call.answered", "a", 4, user_id="u5"), ev("call.ended", "e", 10, cause="normal"),
            ev("controller.bypassed", "b", 1), incomplete=True)
    assert (c.direction, c.line, c.from_, c.to, c.line_number, c.shown_number, c.extranet) == (None,) * 7
    assert (c.started_at_us, c.ring_s, c.duration_s, c.talk_s) == (None, None, None, Decimal("6.000"))
    assert (c.user_id, c.status, c.hangup_cause, c.controller) == ("u5", "incomplete", "normal", "bypassed")
    assert (c.region, c.rate_per_min, c.billed_s, c.cost, c.currency, c.unrated) == (
        None, None, 0, Decimal("0.00"), None, False)
    unanswered = cdr(ev("call.ended", "e", 10), incomplete=True)
    assert (unanswered.talk_s, unanswered.ring_s) == (Decimal("0.000"), None)


def test_incomplete_flag_forces_the_status_on_a_complete_call() -> None:
    c = cdr(ev("call.started", "s", 0), ev("call.answered", "a", 1), ev("call.ended", "e", 61), incomplete=True)
    assert (c.status, c.talk_s, c.billed_s, c.cost) == ("incomplete", Decimal("60.000"), 60, Decimal("1.80"))


@pytest.mark.parametrize("events", [
    [ev("call.started", "s", 0)],
    [ev("call.ended", "e", 0)],
    [ev("call.answered", "a", 0), ev("controller.replied", "r", 0)],
])
def test_a_complete_cdr_needs_started_and_ended(events) -> None:
    with pytest.raises(ValueError, match="incomplete"):
        build_cdr(events, TWO_LINE_TARIFFS)


def test_set_form_refuses_no_events_and_several_calls() -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_cdr([], TWO_LINE_TARIFFS, incomplete=True)
    with pytest.raises(ValueError, match="several calls"):
        build_cdr([ev("call.started", "s", 0), ev("call.ended", "e", 1, call="call-2")], TWO_LINE_TARIFFS)


def test_fold_refuses_an_event_of_another_call() -> None:
    state, _ = fold(None, ev("call.started", "s", 0))
    with pytest.raises(ValueError, match="call-2"):
        fold(state, ev("call.ended", "e", 1, call="call-2"))


def test_inbound_rented_call_is_rated_on_line_number() -> None:
    c = cdr(ev("call.started", "s", 0, direction="inbound", line="rented", from_="+4915112345678",
               to="user:u1", line_number="+7 (495) 123-45-67", user_id=None),
            ev("call.answered", "a", 2), ev("call.ended", "e", at_us=T0 + 2_000_000 + 90_000_001))
    # talk 90.000001 s -> 90.000 -> t = 90, per-second: 90 s at 0.50/min = 0.75
    assert (c.talk_s, c.region, c.billed_s, c.cost) == (Decimal("90.000"), "Moscow rented", 90, Decimal("0.75"))
    assert parse_ts_us("2026-11-25T10:00:00Z") == c.started_at_us
