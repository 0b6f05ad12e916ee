"""The worker's stall watchdog: events waiting, none processed for a while -> rejoin the group.

Faust workers were seen, rarely and only after a takeover, to stay in their
group "ready" with their partitions assigned, their fetch loop alive, and no
event delivered any more (one cause was found and fixed in
``streams/faust_fence/handoff.py``; the report of another showed every task idle). Such a
worker never recovers by itself and the events behind it wait for ever. This
watchdog notices the state — uncommitted events on the worker's own
``call-events`` partitions and no event processed for ``stall_after_s`` while
no rebalance or recovery is under way and no batch is in hand — logs the
diagnostics report, and asks
the group for a rebalance: Faust then recovers the tables and seeks every
partition to its committed offset, as after any rebalance. Re-processing is
safe (at-least-once, de-duplicated by event id).

A batch in hand is never a stall, however long it takes: an agent waiting for
the broker to acknowledge its outputs (a slow or overloaded cluster) makes no
progress that a rebalance could restore, and a 30-minute soak on a starved
machine showed what acting on it costs — each rebalance re-read the hot
table's changelog for minutes while the backlog grew, and the next "stall"
came before the last recovery had paid off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streams.app import streams_running
from streams.faust_fence import diagnostics

log = logging.getLogger("callstream.worker")

STALL_AFTER_S = 20.0


@dataclass
class StallClock:
    """How long the worker has processed nothing while it could have."""

    stall_after_s: float = STALL_AFTER_S
    _seen: int = -1
    _since: float = 0.0

    def idle_for(self, processed: int, now: float, unsettled: bool) -> float:
        """Seconds without progress; any progress, or a rebalance or recovery, restarts it."""
        if unsettled or processed != self._seen:
            self._seen, self._since = processed, now
            return 0.0
        return now - self._since

    def stalled(self, processed: int, now: float, unsettled: bool) -> bool:
        """True once ``stall_after_s`` have passed without progress."""
        return self.idle_for(processed, now, unsettled) >= self.stall_after_s

    def restart(self, now: float) -> None:
        """Count again from ``now`` (after a check, so a stall is acted on once per period)."""
        self._since = now


def waiting(ends: dict, committed: dict) -> dict:
    """Partition -> events after its committed offset (only those with some)."""
    behind = {tp: end - (committed.get(tp) or 0) for tp, end in ends.items()}
    return {tp: n for tp, n in behind.items() if n > 0}


async def check(app: Any, clock: StallClock, processed: Callable[[], int], events_topic: str,
                busy: Callable[[], bool] = lambda: False) -> bool:
    """One look at the worker (a Faust timer calls it); True when it asked for a rebalance.

    ``busy()`` tells that an agent has a batch in hand (see the module docstring)."""
    now = time.monotonic()
    if not clock.stalled(processed(), now, unsettled=busy() or not streams_running(app)):
        return False
    consumer = app.consumer
    clock.restart(now)
    tps = [tp for tp in app.assignor.assigned_actives() if tp.topic == events_topic]
    if not tps:
        return False
    thread = consumer._thread  # Faust's consumer thread owns the aiokafka consumer
    client = thread._ensure_consumer()
    try:
        ends = await thread.call_thread(client.end_offsets, tps)
    except Exception as exc:  # noqa: BLE001 - a broker outage: nothing to decide now
        log.info("stall check: end offsets unavailable (%r)", exc)
        return False
    behind = waiting(dict(ends), dict(consumer._committed_offset))
    if not behind:
        return False
    log.warning("no event processed for %.0f s while %d wait on partitions %s: asking the group to "
                "rebalance\n%s", clock.stall_after_s, sum(behind.values()),
                sorted(tp.partition for tp in behind), diagnostics.report(app))
    # The coordinator lives in the consumer thread's loop.
    thread.thread_loop.call_soon_threadsafe(client._coordinator.request_rejoin)
    await asyncio.sleep(0)
    return True
