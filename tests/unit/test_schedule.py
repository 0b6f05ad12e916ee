"""``streams.call_store.Schedule``: when each hot call next needs the sweep (pure bookkeeping)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.call_store import Schedule, summary_of
from streams.domain.state import CallState, fold
from tests.unit.call_samples import ev

pytestmark = pytest.mark.unit

INCOMPLETE_AFTER, FORGET_AFTER, RETRY_AFTER = 100.0, 1000.0, 30.0


def new_schedule() -> Schedule:
    return Schedule(INCOMPLETE_AFTER, FORGET_AFTER, RETRY_AFTER)


def _folded(call: str, *kinds: str) -> CallState:
    state = None
    for i, kind in enumerate(kinds):
        state, _ = fold(state, ev(kind, f"{call}-{i}", i, call=call))
    return state


def incomplete(call: str, touched: float, partition: int | None = 0) -> CallState:
    """Started, never ended, no CDR yet: expires ``INCOMPLETE_AFTER`` after its last event."""
    return _folded(call, "call.started")._replace(touched_at=touched, partition=partition)


def expired(call: str, touched: float, partition: int | None = 0) -> CallState:
    """Incomplete, and its incomplete CDR already emitted for this quiet period."""
    return incomplete(call, touched, partition)._replace(version=1, emitted={"expired_at": touched})


def complete(call: str, touched: float, partition: int | None = 0, version: int = 1) -> CallState:
    return _folded(call, "call.started", "call.ended")._replace(
        touched_at=touched, partition=partition, version=version)


def summary(items) -> list[tuple[str, str, float, float, int]]:
    return [(d.call_id, d.kind, d.at, d.touched_at, d.partition) for d in items]


# --- track / due / retry ---------------------------------------------------------------

def test_an_incomplete_call_is_due_for_expiry_after_the_timeout() -> None:
    schedule = new_schedule()
    schedule.track(incomplete("c1", 50.0, partition=4))
    assert len(schedule) == 1
    assert schedule.due(149.999) == []
    assert summary(schedule.due(150.0)) == [("c1", "expire", 150.0, 50.0, 4)]


def test_a_due_call_is_retried_after_retry_after_until_its_state_changes() -> None:
    schedule = new_schedule()
    schedule.track(incomplete("c1", 0.0))
    assert len(schedule.due(200.0)) == 1
    assert schedule.due(200.0) == [] and schedule.due(229.999) == []
    assert summary(schedule.due(230.0)) == [("c1", "expire", 230.0, 0.0, 0)]
    assert summary(schedule.due(500.0)) == [("c1", "expire", 260.0, 0.0, 0)]
    schedule.track(expired("c1", 0.0))  # the sweep expired it: now it waits to be archived
    assert schedule.due(999.0) == []  # the retry due at 530 is gone
    assert summary(schedule.due(1000.0)) == [("c1", "forget", 1000.0, 0.0, 0)]


def test_a_settled_call_is_due_to_be_forgotten() -> None:
    schedule = new_schedule()
    schedule.track(complete("c1", 10.0, partition=2))
    schedule.track(expired("c2", 20.0, partition=3))
    assert schedule.due(10.0 + INCOMPLETE_AFTER) == []
    assert schedule.due(1009.999) == []
    assert summary(schedule.due(1020.0)) == [("c1", "forget", 1010.0, 10.0, 2),
                                              ("c2", "forget", 1020.0, 20.0, 3)]


def test_a_call_with_nothing_due_is_kept_but_never_returned() -> None:
    schedule = new_schedule()
    schedule.track(complete("c1", 0.0, version=0))  # complete, yet no CDR recorded as sent
    assert len(schedule) == 1 and schedule.due(1e12) == []


def test_due_returns_calls_in_time_order() -> None:
    schedule = new_schedule()
    for call, touched in [("c3", 30.0), ("c1", 10.0), ("c2", 20.0)]:
        schedule.track(incomplete(call, touched))
    schedule.track(complete("c0", -990.0))  # forget at 10.0
    assert [d.at for d in schedule.due(1e6)] == [10.0, 110.0, 120.0, 130.0]


def test_a_missing_partition_is_minus_one() -> None:
    schedule = new_schedule()
    schedule.track(incomplete("c1", 0.0, partition=None))
    assert [d.partition for d in schedule.due(100.0)] == [-1]


# --- superseding, forgetting -----------------------------------------------------------------

def test_a_retracked_call_is_due_only_for_its_latest_state() -> None:
    schedule = new_schedule()
    schedule.track(incomplete("c1", 100.0))
    schedule.track(incomplete("c1", 200.0))
    assert schedule.due(299.0) == []
    assert summary(schedule.due(300.0)) == [("c1", "expire", 300.0, 200.0, 0)]
    assert len(schedule) == 1


def test_a_retrack_can_move_a_call_earlier() -> None:
    schedule = new_schedule()
    schedule.track(complete("c1", 0.0))  # forget at 1000
    schedule.track(incomplete("c1", 0.0))  # expire at 100 (a state that is no longer complete)
    assert summary(schedule.due(1e6)) == [("c1", "expire", 100.0, 0.0, 0)]


def test_a_retrack_with_nothing_due_cancels_the_old_entry() -> None:
    schedule = new_schedule()
    schedule.track(incomplete("c1", 0.0))
    schedule.track(complete("c1", 0.0, version=0))
    assert schedule.due(1e12) == [] and len(schedule) == 1


def test_a_retrack_during_retry_replaces_the_retry() -> None:
    schedule = new_schedule()
    schedule.track(incomplete("c1", 0.0))
    assert len(schedule.due(100.0)) == 1
    schedule.track(expired("c1", 0.0))
    assert schedule.due(130.0) == []  # the retry of the expire is gone
    assert [d.kind for d in schedule.due(1000.0)] == ["forget"]


def test_forget_drops_a_call() -> None:
    schedule = new_schedule()
    schedule.track(incomplete("c1", 0.0))
    schedule.track(incomplete("c2", 0.0))
    schedule.forget("c1")
    schedule.forget("never-tracked")
    assert len(schedule) == 1
    assert [d.call_id for d in schedule.due(1e6)] == ["c2"]
    schedule.forget("c2")
    assert len(schedule) == 0 and schedule.due(1e9) == []


def test_a_forgotten_call_tracked_again_is_due_again() -> None:
    schedule = new_schedule()
    schedule.track(incomplete("c1", 0.0))
    schedule.forget("c1")
    schedule.track(incomplete("c1", 500.0))
    assert summary(schedule.due(1e6)) == [("c1", "expire", 600.0, 500.0, 0)]


# --- rebuild ------------------------------------------------------------------------------

def test_rebuild_keeps_only_the_active_partitions_and_drops_everything_else() -> None:
    schedule = new_schedule()
    schedule.track(incomplete("old", 0.0, partition=0))
    states = [incomplete("a", 0.0, partition=0), incomplete("b", 1.0, partition=1),
              complete("c", 2.0, partition=2), incomplete("d", 3.0, partition=None)]
    schedule.rebuild([summary_of(s) for s in states], {0, 2})
    assert len(schedule) == 2
    assert summary(schedule.due(1e6)) == [("a", "expire", 100.0, 0.0, 0), ("c", "forget", 1002.0, 2.0, 2)]
    schedule.rebuild(iter([summary_of(s) for s in states]), set())
    assert len(schedule) == 0 and schedule.due(1e9) == []


def test_rebuild_drops_pending_retries() -> None:
    schedule = new_schedule()
    schedule.track(incomplete("a", 0.0, partition=1))
    assert len(schedule.due(100.0)) == 1
    schedule.rebuild([summary_of(incomplete("a", 0.0, partition=1))], {1})
    assert summary(schedule.due(100.0)) == [("a", "expire", 100.0, 0.0, 1)]


# --- heap compaction ---------------------------------------------------------------------------

def _bound(schedule: Schedule) -> int:
    return 2 * len(schedule) + 1024 + 1


def test_the_heap_stays_bounded_under_100k_retracks_of_a_few_calls() -> None:
    schedule = new_schedule()
    calls = [f"c{i}" for i in range(5)]
    templates = {call: incomplete(call, 0.0) for call in calls}
    peak = 0
    for n in range(100_000):
        call = calls[n % 5]
        schedule.track(templates[call]._replace(touched_at=float(n)))
        peak = max(peak, len(schedule._heap))
    assert peak <= _bound(schedule) == 1035
    assert len(schedule) == 5
    # Only the live entries come out, each once, for its latest state.
    assert summary(schedule.due(1e9)) == [
        (f"c{n % 5}", "expire", n + INCOMPLETE_AFTER, float(n), 0) for n in range(99_995, 100_000)]
    assert schedule.due(1e9) == []


def test_the_heap_stays_bounded_while_due_retries_and_forgets_churn() -> None:
    schedule = new_schedule()
    for i in range(3000):
        schedule.track(incomplete(f"c{i}", float(i)))
    for i in range(0, 3000, 2):
        schedule.forget(f"c{i}")
    now = 0.0
    for n in range(8_000):
        schedule.track(incomplete(f"c{1 + 2 * (n % 50)}", now))
        if n % 100 == 0:
            now += 50.0
            schedule.due(now)
        assert len(schedule._heap) <= _bound(schedule)
    assert len(schedule) == 1500


# --- property: the schedule behaves like a plain dict of the latest entries ----------------------

def _expected_entry(kind: str, touched: float) -> tuple[str, float] | None:
    return {"incomplete": ("expire", touched + INCOMPLETE_AFTER),
            "expired": ("forget", touched + FORGET_AFTER),
            "complete": ("forget", touched + FORGET_AFTER),
            "unsent": None}[kind]


_BUILD = {"incomplete": incomplete, "expired": expired, "complete": complete,
          "unsent": lambda call, touched, partition: complete(call, touched, partition, version=0)}

_ops = st.lists(st.one_of(
    st.tuples(st.just("track"), st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(sorted(_BUILD)),
              st.integers(0, 40).map(lambda k: k * 25.0), st.sampled_from([0, 1, None])),
    st.tuples(st.just("forget"), st.sampled_from(["a", "b", "c", "d", "z"])),
    st.tuples(st.just("due"), st.integers(0, 300).map(float)),
), max_size=60)


@settings(deadline=None, max_examples=300)
@given(_ops)
def test_the_schedule_matches_a_model_of_the_latest_entries(ops: list[Any]) -> None:
    schedule = new_schedule()
    model: dict[str, tuple[str, float, float, int] | None] = {}
    now = 0.0
    for op in ops:
        if op[0] == "track":
            _, call, kind, touched, partition = op
            schedule.track(_BUILD[kind](call, touched, partition))
            entry = _expected_entry(kind, touched)
            model[call] = None if entry is None else (entry[0], entry[1], touched,
                                                      -1 if partition is None else partition)
        elif op[0] == "forget":
            schedule.forget(op[1])
            model.pop(op[1], None)
        else:
            now += op[1]
            got = schedule.due(now)
            assert [d.at for d in got] == sorted(d.at for d in got)
            ready = {call: e for call, e in model.items() if e is not None and e[1] <= now}
            assert {d.call_id: (d.kind, d.at, d.touched_at, d.partition) for d in got} == ready
            assert len(got) == len(ready)
            for call, (kind, _, touched, partition) in ready.items():
                model[call] = (kind, now + RETRY_AFTER, touched, partition)
        assert len(schedule) == len(model)


# --- recording checks and evictions (contract v1.1, issue 12) --------------------------------

def test_a_call_awaiting_its_recording_is_due_for_the_check_before_it_can_be_forgotten() -> None:
    from streams.domain.shared import ENDED_SEEN_KEY

    schedule = Schedule(INCOMPLETE_AFTER, FORGET_AFTER, RETRY_AFTER, recording_wait=50.0)
    state = _folded("rec", "call.started", "call.answered", "call.ended")
    state = state._replace(started=state.started._replace(record=True), version=1, touched_at=10.0,
                           partition=2, emitted={ENDED_SEEN_KEY: 5.0})
    schedule.track(state)
    assert summary(schedule.due(54.0)) == []
    assert summary(schedule.due(55.0)) == [("rec", "recording", 55.0, 10.0, 2)]
    schedule.track(state._replace(emitted={ENDED_SEEN_KEY: 5.0, "recording_checked": True}))
    assert summary(schedule.due(1e9)) == [("rec", "forget", 1010.0, 10.0, 2)]


def test_over_the_cap_the_quietest_calls_are_evicted_down_to_ninety_percent() -> None:
    schedule = new_schedule()
    for n in range(120):
        schedule.track(incomplete(f"c{n:03d}", touched=float(n)))
    assert schedule.evictions(200, now=500.0) == []
    evicted = schedule.evictions(100, now=500.0)
    assert [d.call_id for d in evicted] == [f"c{n:03d}" for n in range(30)]
    assert {d.kind for d in evicted} == {"evict"}
    # Asked once: while those are not done, nobody else is picked; they are asked again
    # after the retry time.
    assert schedule.evictions(100, now=505.0) == []
    assert {d.call_id for d in schedule.due(500.0 + RETRY_AFTER)} >= {f"c{n:03d}" for n in range(30)}
    for n in range(30):
        schedule.forget(f"c{n:03d}")  # archived
    assert schedule.evictions(100, now=600.0) == []


def test_re_asks_are_capped_per_sweep_and_first_asks_never_are() -> None:
    """A worker behind its commands is not sent every waiting call again each retry_after."""
    schedule = new_schedule()
    for n in range(10):
        schedule.track(incomplete(f"old{n}", 0.0))
    assert len(schedule.due(100.0, max_retries=3)) == 10  # first asks: all of them
    for n in range(5):
        schedule.track(incomplete(f"new{n}", 30.0))
    again = summary(schedule.due(130.0, max_retries=3))
    assert sorted(c for c, *_ in again if c.startswith("new")) == [f"new{n}" for n in range(5)]
    assert len([c for c, *_ in again if c.startswith("old")]) == 3  # 3 of the 10 re-asked
    later = [c for c, *_ in summary(schedule.due(160.0, max_retries=100)) if c.startswith("old")]
    assert len(later) == 10  # the 7 held back and the 3 re-asked at 130 come round again
    schedule.track(expired("old0", 0.0))  # a command done: no more expiry re-asks, its forget next
    assert [(c, kind) for c, kind, *_ in summary(schedule.due(999.0)) if c == "old0"] == []
    assert ("old0", "forget") in [(c, kind) for c, kind, *_ in summary(schedule.due(1000.0))]
