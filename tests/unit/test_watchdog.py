"""streams.faust_fence.watchdog: when a worker counts as stalled, and which partitions have events waiting."""

from __future__ import annotations

import pytest

from streams.faust_fence.watchdog import StallClock, waiting

pytestmark = pytest.mark.unit


def test_a_worker_is_stalled_after_the_period_without_progress():
    clock = StallClock(stall_after_s=20)
    assert not clock.stalled(5, 100.0, unsettled=False)  # first look: the clock starts
    assert not clock.stalled(5, 119.9, unsettled=False)
    assert clock.stalled(5, 120.0, unsettled=False)


def test_progress_or_a_rebalance_restarts_the_clock():
    clock = StallClock(stall_after_s=20)
    clock.stalled(5, 100.0, unsettled=False)
    assert not clock.stalled(6, 119.0, unsettled=False)  # an event processed
    assert not clock.stalled(6, 130.0, unsettled=False)
    assert not clock.stalled(6, 140.0, unsettled=True)  # a rebalance or recovery under way
    assert not clock.stalled(6, 159.0, unsettled=False)
    assert clock.stalled(6, 160.0, unsettled=False)


def test_a_stall_is_acted_on_once_per_period():
    clock = StallClock(stall_after_s=20)
    clock.stalled(1, 0.0, unsettled=False)
    assert clock.stalled(1, 20.0, unsettled=False)
    clock.restart(20.0)
    assert not clock.stalled(1, 39.0, unsettled=False)
    assert clock.stalled(1, 40.0, unsettled=False)


def test_waiting_events_are_those_after_the_committed_offset():
    assert waiting({"p0": 10, "p1": 7, "p2": 3}, {"p0": 10, "p1": 5}) == {"p1": 2, "p2": 3}
    assert waiting({"p0": 0}, {}) == {}
