"""streams.faust_fence.watchdog: when a worker counts as stalled, and which partitions have events waiting."""

from __future__ import annotations

import asyncio

import pytest

from common.config import Settings
from streams.app import create_app
from streams.faust_fence import watchdog
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


def test_a_batch_in_hand_is_never_a_stall():
    """An agent waiting for the broker's acknowledgements makes no progress a rebalance could restore."""
    clock = StallClock(stall_after_s=20)
    clock.idle_for(5, 0.0, unsettled=False)
    assert clock.stalled(5, 25.0, unsettled=False)
    clock.idle_for(5, 30.0, unsettled=True)  # busy: what check() passes while a batch is in hand
    assert not clock.stalled(5, 45.0, unsettled=False)


def test_check_asks_nothing_of_a_worker_with_a_batch_in_hand():
    """check() decides on ``busy`` before it looks at the consumer: the app is not even touched."""
    clock = StallClock(stall_after_s=20, _seen=0, _since=-1e9)  # idle since long ago
    untouchable = object()  # any attribute access would raise
    assert asyncio.run(watchdog.check(untouchable, clock, lambda: 0, "events", busy=lambda: True)) is False


def test_the_worker_holds_a_bounded_number_of_fetched_records():
    """Records fetched and not processed wait in each stream's buffer: at most this many deliveries of at
    most broker_max_poll_records each (a starved worker once held a million events, 1.2 GB)."""
    app = create_app(Settings.from_env({}))
    assert app.conf.stream_buffer_maxsize * app.conf.broker_max_poll_records <= 20_000
