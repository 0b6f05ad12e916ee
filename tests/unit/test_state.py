"""The fold state: alert inputs, the worker's bookkeeping and the compact byte form."""

from __future__ import annotations

import uuid
from decimal import Decimal

import orjson
import pytest

from streams.domain.state import Bypassed, Replied, Started, fold, is_complete, state_from_bytes, state_to_bytes
from tests.unit.call_samples import T0, ev

pytestmark = pytest.mark.unit


def folded(*events):
    state = None
    for event in events:
        state, _ = fold(state, event)
    return state


def ten_events(eid=lambda: str(uuid.uuid4())):
    return [
        ev("call.started", eid(), 0, portal="b24-portal-123456",
           direction="inbound", line="rented", from_="+79161234567", to="+74951234567",
           line_number="+74951234567", shown_number=None, user_id=None),
        ev("controller.requested", eid(), 0.1), ev("controller.replied", eid(), 0.2, result="ok"),
        ev("call.offered", eid(), 0.3, user_id="17", attempt=1), ev("call.offer_missed", eid(), 10, user_id="17"),
        ev("call.offered", eid(), 10.1, user_id="18", attempt=2), ev("call.answered", eid(), 12, user_id="18"),
        ev("call.ended", eid(), 130), ev("call.forwarded", eid(), 9, to="voicemail"),
        ev("recording.stored", eid(), 131, url="https://records.example.com/2026/11/25/abcdef0123456789.mp3",
           bytes=1_900_000, seconds=Decimal("118.25")),
    ]


def test_ten_events_with_uuid_ids_serialise_under_one_kib() -> None:
    events = [e._replace(call_id="c-" + "x" * 30) for e in ten_events()]
    data = state_to_bytes(folded(*events))
    assert len(data) < 1024
    assert state_from_bytes(data) == folded(*events)


def test_bookkeeping_survives_bytes_and_is_untouched_by_fold() -> None:
    state = folded(ev("call.started", "s", 0))
    state = state._replace(version=3, partition=5, touched_at=1764064800.125,
                                emitted={"alerts": ["stale_key:call-1"], "digest": {"n": 2}})
    revived = state_from_bytes(state_to_bytes(state))
    assert (revived.version, revived.partition, revived.touched_at, revived.emitted) == (
        3, 5, 1764064800.125, {"alerts": ["stale_key:call-1"], "digest": {"n": 2}})
    after, changed = fold(revived, ev("call.ended", "e", 5))
    assert changed and (after.version, after.partition, after.touched_at, after.emitted) == (
        3, 5, 1764064800.125, revived.emitted)
    fresh = folded(ev("call.started", "s", 0))
    assert (fresh.version, fresh.partition, fresh.touched_at, fresh.emitted) == (0, None, 0.0, {})


def test_alert_inputs_are_kept() -> None:
    state = folded(
        ev("call.started", "s", 0, line="operator", extranet=True),
        ev("controller.bypassed", "b2", 4, reason="error", key_saved_at_us=T0 - 1),
        ev("controller.bypassed", "b1", 3, reason="unreachable", key_saved_at_us=T0 - 100 * 3_600_000_000),
        ev("controller.replied", "r3", 9, result="license_error"),
        ev("controller.replied", "r1", 2, result="ok"),
        ev("controller.replied", "r2", 5, result="license_error"),
        ev("controller.replied", "r4", 7, result="config_not_found"),
    )
    assert isinstance(state.started, Started) and (state.started.line, state.started.extranet) == ("operator", True)
    assert state.bypassed == Bypassed(T0 + 3_000_000, "b1", "unreachable", T0 - 100 * 3_600_000_000)
    assert state.replied == Replied(T0 + 9_000_000, "r3", "license_error")
    assert state.replied_first == (Replied(T0 + 7_000_000, "r4", "config_not_found"),
                                   Replied(T0 + 5_000_000, "r2", "license_error"),
                                   Replied(T0 + 2_000_000, "r1", "ok"))
    assert state_from_bytes(state_to_bytes(state)) == state


def test_fold_leaves_the_old_state_unchanged() -> None:
    before = folded(ev("call.started", "s", 0))
    after, changed = fold(before, ev("call.answered", "a", 1))
    assert changed and before.answered is None and after.answered is not None
    again, changed = fold(after, ev("call.answered", "a", 1))
    assert again is after and not changed


def test_is_complete() -> None:
    assert not is_complete(folded(ev("call.started", "s", 0)))
    assert not is_complete(folded(ev("call.ended", "e", 0), ev("call.answered", "a", 0)))
    assert is_complete(folded(ev("call.ended", "e", 0), ev("call.started", "s", 9)))


def test_extreme_values_survive_bytes_exactly() -> None:
    state = folded(ev("recording.stored", "r1", 0, bytes=2**63 - 1, seconds=Decimal("1.7976931348623157E+308")),
                   ev("recording.stored", "r2", 0, bytes=0, seconds=Decimal("5E-324")),
                   ev("call.offered", "o", 0, attempt=2**63 - 1))
    assert state_from_bytes(state_to_bytes(state)) == state


def test_the_byte_form_is_the_same_for_any_arrival_order() -> None:
    events = ten_events(eid=iter(f"e{i}" for i in range(10)).__next__)
    assert state_to_bytes(folded(*events)) == state_to_bytes(folded(*reversed(events)))


@pytest.mark.parametrize("data", [
    b"", b"not json", b"{}", b"[]", b"[2]", b'[1,"c"]',
    orjson.dumps([1, "c", ["e"], [0, 5, "p"]] + [None] * 13),
    orjson.dumps([1, "c", ["e"], [0, 0, "p"], None, None, None, None, None, [], None, [],
                  [[0, 0, "u", 1, "x1"]], 0, None, 0.0, {}]),
])
def test_corrupt_bytes_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        state_from_bytes(data)


def test_stalest_bypass_is_the_oldest_key_whatever_the_order():
    from streams.domain.events import ControllerBypassed, Event
    from streams.domain.state import fold

    def bypass(event_id: str, ts_us: int, key_us: int) -> Event:
        return Event(event_id, "controller.bypassed", "c-1", "p-1", "voice", "vox-1", ts_us,
                     ControllerBypassed("timeout", key_us))

    fresh = bypass("a", 10_000_000, 9_000_000)       # key 1 s old
    stale = bypass("b", 20_000_000, 1_000_000)       # key 19 s old
    for order in ([fresh, stale], [stale, fresh]):
        state = None
        for event in order:
            state, _ = fold(state, event)
        assert state.bypassed.event_id == "a"   # the earliest bypass
        assert state.stalest.event_id == "b"    # the oldest key
