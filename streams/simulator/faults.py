"""Delivery: the order in which events leave, and the faults of real networks.

Every event has a *delivery time* (event time, by default) and messages leave
in delivery-time order across all calls, so a recording stored an hour after
its call naturally arrives after later calls' events. The faults only change
delivery, never the events themselves:

- ``shuffle``: the call's delivery times are permuted among its events, so its
  ``call.ended`` may come before its ``call.started``;
- ``late_recordings``: a ``recording.stored`` is held back a further 5-60 min;
- ``duplicates``: the event is sent again with the same bytes (same
  ``event_id``), right after it or up to 2 min of event time later.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator

from streams.simulator.knobs import Faults

_MIN_US = 60_000_000

# A message waiting to leave: (delivery_us, sequence, key, value, kind).
Pending = tuple[int, int, bytes, bytes, str]


class DeliveryQueue:
    """Messages waiting for their delivery time, with the configured faults applied."""

    def __init__(self, rng: random.Random, faults: Faults) -> None:
        self._rng = rng
        self._faults = faults
        self._heap: list[Pending] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push_call(self, key: bytes, encoded: list[tuple[int, bytes, str]]) -> None:
        """Queue one call's events: ``(ts_us, value, type)`` each, keyed by ``key``."""
        rng, faults = self._rng, self._faults
        times = [ts for ts, _, _ in encoded]
        if faults.shuffle and rng.random() < faults.shuffle:
            rng.shuffle(times)
        for deliver_us, (_, value, type_) in zip(times, encoded):
            if faults.late_recordings and type_ == "recording.stored" \
                    and rng.random() < faults.late_recordings:
                deliver_us += rng.randrange(5 * _MIN_US, 60 * _MIN_US)
            self._push(deliver_us, key, value, "event")
            if faults.duplicates and rng.random() < faults.duplicates:
                again = 0 if rng.random() < 0.5 else rng.randrange(0, 2 * _MIN_US)
                self._push(deliver_us + again, key, value, "duplicate")

    def _push(self, deliver_us: int, key: bytes, value: bytes, kind: str) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (deliver_us, self._seq, key, value, kind))

    def pop_due(self, until_us: int) -> Iterator[Pending]:
        """Messages whose delivery time is before ``until_us``, in delivery order."""
        heap = self._heap
        pop = heapq.heappop
        while heap and heap[0][0] < until_us:
            yield pop(heap)

    def pop_all(self) -> Iterator[Pending]:
        """Every message still waiting, in delivery order."""
        heap = self._heap
        while heap:
            yield heapq.heappop(heap)
