"""The pure simulator: determinism, contract validity, coverage, and truth = events."""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal

import orjson
import pytest

from streams.domain.cdr import build_cdr
from streams.domain.events import Event, Rejection
from streams.domain.rating import load_tariffs
from streams.domain.timefmt import parse_ts_us
from streams.domain.validation import validate
from streams.simulator import Knobs, generate_all
from streams.simulator.model import CONTROLLER_NODES, VOICE_NODES

pytestmark = pytest.mark.unit

START_US = parse_ts_us("2026-11-24T06:00:00Z")  # a Tuesday, 09:00 in Moscow
# Rare things made common enough that 3,000 calls show every one of them.
BUSY_KNOBS = Knobs(outage_rate=0.1, stale_key=0.3, license_errors=0.02, dev_copy=0.05, extranet=0.05)
ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@pytest.fixture(scope="module")
def corpus():
    messages, truth = generate_all(11, 3000, 20, START_US, knobs=BUSY_KNOBS)
    events = [validate(m.value, m.key) for m in messages]
    return messages, truth, events


@pytest.fixture(scope="module")
def by_call(corpus):
    _, _, events = corpus
    calls: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        calls[event.call_id].append(event)
    return calls


def _data(event: Event) -> dict:
    return {name: getattr(event.data, name) for name in event.data.__slots__}


def test_same_seed_same_bytes_other_seed_other_bytes():
    first, truth1 = generate_all(3, 200, 5, START_US)
    again, truth2 = generate_all(3, 200, 5, START_US)
    other, _ = generate_all(4, 200, 5, START_US)
    assert [m.value for m in first] == [m.value for m in again]
    assert [m.key for m in first] == [m.key for m in again]
    assert truth1 == truth2
    assert [m.value for m in first] != [m.value for m in other]


def test_every_message_is_a_valid_event_keyed_by_its_call_id(corpus):
    messages, _, events = corpus
    rejected = [e for e in events if isinstance(e, Rejection)]
    assert rejected == []
    assert all(m.key == e.call_id.encode() and m.kind == "event" for m, e in zip(messages, events))
    assert len({e.event_id for e in events}) == len(events)
    assert all(re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", e.event_id) for e in events)


def test_first_call_starts_at_start_and_ids_look_like_the_contract(corpus):
    _, truth, events = corpus
    assert truth[0]["started_at"] == "2026-11-24T06:00:00.000Z"
    assert all(re.fullmatch(r"p-\d+", e.portal_id) for e in events)
    assert all(e.node in VOICE_NODES if e.source == "voice" else e.node in CONTROLLER_NODES
               for e in events)
    users = {e.data.user_id for e in events if e.type in ("call.offered", "call.answered")}
    assert users and all(re.fullmatch(r"u-\d+", u) for u in users)


def test_every_line_direction_type_cause_and_outcome_appears(corpus):
    _, truth, events = corpus
    assert {(t["line"], t["direction"]) for t in truth} == {
        ("rented", "inbound"), ("rented", "outbound"), ("operator", "outbound"),
        ("sip", "inbound"), ("sip", "outbound"), ("internal", "internal")}
    assert {e.type for e in events} == {
        "call.started", "controller.requested", "controller.replied", "controller.bypassed",
        "call.offered", "call.offer_missed", "call.forwarded", "call.answered",
        "recording.stored", "call.ended"}
    assert {e.data.cause for e in events if e.type == "call.ended"} == {
        "normal", "busy", "no_answer", "rejected", "failed", "license_error",
        "config_not_found", "forbidden"}
    assert {t["status"] for t in truth} == {"answered", "busy", "missed", "rejected", "failed"}
    assert {t["controller"] for t in truth} == {"bypassed", "checked", "none"}
    assert {t["controller_result"] for t in truth} == {"ok", "license_error", "config_not_found", None}
    assert {e.data.reason for e in events if e.type == "controller.bypassed"} == {
        "timeout", "unreachable", "error"}
    assert {e.data.rule for e in events if e.type == "call.offered"} == {
        "employee", "crm_responsible", "queue"}
    assert {e.data.reason for e in events if e.type == "call.forwarded"} == {"no_answer", "busy", "rule"}
    assert {e.data.format for e in events if e.type == "recording.stored"} == {"mp3", "wav"}
    assert any(t["stale_key"] for t in truth) and any(t["extranet"] for t in truth)


def test_outbound_destinations_cover_russia_cis_europe_usa(corpus):
    _, truth, _ = corpus
    outbound = [t for t in truth if t["direction"] == "outbound"]
    assert {t["zone"] for t in outbound} == {"russia", "cis", "europe", "usa"}
    numbers = [t["to"] for t in outbound]
    for prefix in ("+7495", "+7812", "+79", "+77", "+375", "+380", "+998", "+49", "+44", "+1"):
        assert any(n.startswith(prefix) for n in numbers), prefix
    assert all(re.fullmatch(r"\+[0-9]{3,15}", n) for n in numbers)
    assert all(len(n) == 12 for n in numbers if n.startswith("+1") or n.startswith("+7"))


def test_lines_carry_their_numbers(corpus):
    _, truth, _ = corpus
    for t in truth:
        if t["line"] == "operator":
            # No number of its own: the caller is the portal user placing the call.
            assert t["line_number"] is None and t["from"] == f"user:{t['user_id']}"
        elif t["line"] == "sip":
            assert re.fullmatch(r"sip-\d+", t["line_number"])
        elif t["line"] == "rented":
            assert t["line_number"] == (t["to"] if t["direction"] == "inbound" else t["from"])
    hidden = [t for t in truth if t["line"] == "rented" and t["direction"] == "outbound"
              and t["shown_number"] != t["line_number"]]
    assert hidden, "some portals show an office number instead of the rented one"


def test_internal_calls_are_never_recorded_nor_checked(by_call, corpus):
    _, truth, _ = corpus
    internal = [t for t in truth if t["line"] == "internal"]
    assert internal
    for t in internal:
        events = by_call[t["call_id"]]
        started = next(e for e in events if e.type == "call.started")
        assert started.data.record is False and started.data.direction == "internal"
        assert started.data.from_.startswith("user:") and started.data.to.startswith("user:")
        assert not any(e.type.startswith("controller.") or e.type == "recording.stored" for e in events)
        assert t["controller"] == "none" and t["recording_count"] == 0


def test_every_paid_call_asks_the_controller_first(by_call, corpus):
    _, truth, _ = corpus
    for t in truth:
        if t["line"] == "internal":
            continue
        # The Controller's clock may disagree by tens of ms: order the voice server's events only.
        voice = sorted((e for e in by_call[t["call_id"]] if e.source == "voice"), key=lambda e: e.ts_us)
        assert [e.type for e in voice[:2]] == ["call.started", "controller.requested"]
        assert sum(e.type in ("controller.replied", "controller.bypassed")
                   for e in by_call[t["call_id"]]) == 1
        replies = [e for e in by_call[t["call_id"]] if e.type == "controller.replied"]
        assert all(e.data.config_id is not None for e in replies if e.data.result != "config_not_found")


def test_recordings_follow_talk_time_and_bitrate(by_call, corpus):
    _, truth, _ = corpus
    recorded = [t for t in truth if t["recording_count"]]
    assert recorded
    for t in recorded:
        stored = [e for e in by_call[t["call_id"]] if e.type == "recording.stored"]
        for e in stored:
            header = 128 if e.data.format == "mp3" else 44
            assert e.data.bytes == int(e.data.seconds * 1000) * 16 + header
            assert e.data.url.startswith(f"https://rec.example.net/{t['portal_id']}/")
            assert e.ts_us > parse_ts_us(t["ended_at"])
        audio = sum(e.data.seconds for e in stored)
        talk = Decimal(t["talk_s"])
        assert talk - Decimal("0.4") <= audio <= talk
    late = [t for t in recorded
            if max(e.ts_us for e in by_call[t["call_id"]]) - parse_ts_us(t["ended_at"]) > 120e6]
    assert late, "some recordings are stored minutes after the call"


def test_talk_time_is_heavy_tailed(corpus):
    _, truth, _ = corpus
    talks = sorted(Decimal(t["talk_s"]) for t in truth if t["status"] == "answered")
    assert talks[0] >= 1 and talks[-1] <= 3 * 3600
    assert sum(1 for s in talks if s < 10) > len(talks) * 0.1
    assert sum(1 for s in talks if s > 600) > 0
    assert Decimal(40) < talks[len(talks) // 2] < Decimal(120)


def test_bypass_keys_are_fresh_or_clearly_stale(by_call, corpus):
    _, truth, _ = corpus
    for t in truth:
        if t["controller"] != "bypassed":
            continue
        bypass = next(e for e in by_call[t["call_id"]] if e.type == "controller.bypassed")
        age_h = (bypass.ts_us - bypass.data.key_saved_at_us) / 3600e6
        assert age_h > 27 if t["stale_key"] else 0 < age_h < 25.1


def _fold(events: list[Event]) -> dict:
    """The contract's CDR rules, applied to one call's distinct events (test oracle #2)."""
    kinds = defaultdict(list)
    for e in {e.event_id: e for e in events}.values():
        kinds[e.type].append(e)
    started, ended = kinds["call.started"][0], kinds["call.ended"][0]
    answered = min(kinds["call.answered"], key=lambda e: e.ts_us, default=None)
    status = "answered" if answered else {
        "busy": "busy", "no_answer": "missed", "normal": "missed", "rejected": "rejected",
        "forbidden": "rejected"}.get(ended.data.cause, "failed")
    replies = sorted(kinds["controller.replied"], key=lambda e: e.ts_us)
    forwards = sorted(kinds["call.forwarded"], key=lambda e: e.ts_us)
    recordings = kinds["recording.stored"]
    end_of_ring = answered.ts_us if answered else ended.ts_us
    return {
        "status": status, "hangup_cause": ended.data.cause,
        "talk_s": (ended.ts_us - answered.ts_us) / 1e6 if answered else 0.0,
        "ring_s": (end_of_ring - started.ts_us) / 1e6,
        "duration_s": (ended.ts_us - started.ts_us) / 1e6,
        "queue_attempts": len({e.data.attempt for e in kinds["call.offered"]}),
        "forwarded_to": forwards[-1].data.to if forwards else None,
        "controller": "bypassed" if kinds["controller.bypassed"] else "checked" if replies else "none",
        "controller_result": replies[-1].data.result if replies else None,
        "recording_count": len(recordings),
        "recording_bytes": sum(e.data.bytes for e in recordings),
        "events": sum(len(v) for v in kinds.values()),
        "user_id": answered.data.user_id if answered else started.data.user_id,
    }


def test_truth_agrees_with_the_events(by_call, corpus):
    _, truth, _ = corpus
    assert len(truth) == len(by_call) == 3000
    for t in truth:
        folded = _fold(by_call[t["call_id"]])
        for name in ("talk_s", "ring_s", "duration_s"):
            assert float(t[name]) == pytest.approx(folded.pop(name), abs=1e-9), name
        assert {k: t[k] for k in folded} == folded, t["call_id"]


def test_truth_agrees_with_the_domain_cdr(by_call, corpus):
    _, truth, _ = corpus
    tariffs = load_tariffs(_tariffs_path())
    for t in truth:
        cdr = build_cdr(by_call[t["call_id"]], tariffs)
        assert (cdr.status, str(cdr.talk_s), str(cdr.duration_s), str(cdr.ring_s)) == \
            (t["status"], t["talk_s"], t["duration_s"], t["ring_s"])
        assert (cdr.controller, cdr.controller_result, cdr.queue_attempts, cdr.forwarded_to) == \
            (t["controller"], t["controller_result"], t["queue_attempts"], t["forwarded_to"])
        assert (cdr.recording_bytes, len(cdr.recording_urls), str(cdr.recording_s), cdr.events) == \
            (t["recording_bytes"], t["recording_count"], t["recording_s"], t["events"])
        assert (cdr.user_id, cdr.extranet, cdr.line_number, cdr.shown_number) == \
            (t["user_id"], t["extranet"], t["line_number"], t["shown_number"])


def test_truth_lines_are_json_with_the_documented_fields(corpus):
    _, truth, _ = corpus
    expected = {"call_id", "portal_id", "direction", "line", "from", "to", "line_number",
                "shown_number", "user_id", "extranet", "started_at", "answered_at", "ended_at",
                "status", "hangup_cause", "ring_s", "talk_s", "duration_s", "queue_attempts",
                "forwarded_to", "controller", "controller_result", "stale_key", "recording_count",
                "recording_bytes", "recording_s", "zone", "events"}
    for t in truth[:50]:
        assert set(orjson.loads(orjson.dumps(t))) == expected
        assert re.fullmatch(r"\d+\.\d{3}", t["talk_s"]) and ID.fullmatch(t["call_id"])


def _tariffs_path():
    from common.config import Settings

    return Settings.from_env({}).tariffs_path
