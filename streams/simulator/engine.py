"""The simulator's engine: calls in, messages out, in delivery order, with truth on the side.

Pure and deterministic: a seed, a start time and the knobs fix every byte
(event ids and timestamps included). Nothing here touches Kafka; the producer
in :mod:`streams.simulator.produce` is a thin layer over :class:`Simulator`.

Four random streams are derived from the seed, so that turning a delivery
fault on does not change the calls, and pacing by wall clock does not change
what the calls are: the world and calls, the arrivals, the delivery faults,
the malformed messages.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from streams.simulator import malformed
from streams.simulator.arrivals import Arrivals
from streams.simulator.call import Call
from streams.simulator.faults import DeliveryQueue, Pending
from streams.simulator.knobs import DEFAULT_KNOBS, NO_FAULTS, Faults, Knobs
from streams.simulator.model import build_world
from streams.simulator.scenarios import Context, play
from streams.simulator.stamps import format_ts, uuid4_hex
from streams.simulator.truth import call_truth, malformed_truth

TruthSink = Callable[[dict[str, Any]], None]


class SimMessage(NamedTuple):
    """One Kafka message: ``kind`` is "event", "duplicate" or "malformed"."""

    key: bytes
    value: bytes
    kind: str


@dataclass
class Stats:
    """Counts of what left the simulator so far."""

    calls: int = 0
    events: int = 0
    duplicates: int = 0
    malformed: int = 0

    @property
    def messages(self) -> int:
        """Every message sent: events, duplicates and malformed ones."""
        return self.events + self.duplicates + self.malformed


class Simulator:
    """Plays calls and releases their messages once event time reaches them."""

    def __init__(self, seed: int | str, portals: int, start_us: int, faults: Faults = NO_FAULTS,
                 knobs: Knobs = DEFAULT_KNOBS, on_truth: TruthSink | None = None) -> None:
        if portals < 1:
            raise ValueError("portals must be >= 1")
        rng = random.Random(f"{seed}:calls")
        self._rng = rng
        self._ctx = Context(rng, build_world(rng, portals, knobs), knobs, start_us)
        self._arrivals = Arrivals(random.Random(f"{seed}:arrivals"), portals * knobs.peak_rate, start_us)
        self._queue = DeliveryQueue(random.Random(f"{seed}:faults"), faults)
        self._bad_rng = random.Random(f"{seed}:malformed")
        self._malformed = faults.malformed
        self._on_truth = on_truth
        self._last_us = start_us - start_us % 1000
        self.stats = Stats()

    @property
    def pending(self) -> int:
        """Messages generated but not yet released."""
        return len(self._queue)

    def next_arrival_us(self) -> int:
        """Start time of the next call of the business-hours arrival process."""
        return self._arrivals.next_us()

    def add_call(self, t_us: int) -> None:
        """Play one call starting at ``t_us`` (never earlier than the previous call)."""
        t_us = max(self._last_us, t_us - t_us % 1000)
        self._last_us = t_us
        call = play(self._ctx, t_us)
        self.stats.calls += 1
        if self._on_truth is not None:
            self._on_truth(call_truth(call))
        self._queue.push_call(call.call_id.encode(), self._encode(call))

    def _encode(self, call: Call) -> list[tuple[int, bytes, str]]:
        rng, dumps = self._rng, orjson.dumps
        call_id, portal_id = call.call_id, call.portal.portal_id
        return [(ts, dumps({"event_id": uuid4_hex(rng), "v": 1, "type": type_, "call_id": call_id,
                            "portal_id": portal_id, "source": source, "node": node,
                            "ts": format_ts(ts), "data": data}), type_)
                for ts, type_, source, node, data in call.events]

    def release(self, until_us: int) -> Iterator[SimMessage]:
        """Messages due before event time ``until_us``, malformed ones interleaved."""
        return self._emit(self._queue.pop_due(until_us))

    def drain(self) -> Iterator[SimMessage]:
        """Every message still waiting, whatever its delivery time."""
        return self._emit(self._queue.pop_all())

    def _emit(self, pending: Iterator[Pending]) -> Iterator[SimMessage]:
        stats, bad_rng, rate = self.stats, self._bad_rng, self._malformed
        for _, _, key, value, kind in pending:
            if kind == "event":
                stats.events += 1
            else:
                stats.duplicates += 1
            yield SimMessage(key, value, kind)
            if rate and bad_rng.random() < rate:
                bad, reason, what = malformed.make(bad_rng, value)
                if self._on_truth is not None:
                    self._on_truth(malformed_truth(reason, what, key, stats.messages))
                stats.malformed += 1
                yield SimMessage(key, bad, "malformed")


def generate(seed: int | str, calls: int, portals: int, start_us: int, faults: Faults = NO_FAULTS,
             knobs: Knobs = DEFAULT_KNOBS, on_truth: TruthSink | None = None) -> Iterator[SimMessage]:
    """Messages of ``calls`` calls (0 = endless) from ``start_us`` on, as fast as they can be made.

    Event time follows the business-hours arrival process; ``on_truth`` receives
    each truth record (see :mod:`streams.simulator.truth`).
    """
    sim = Simulator(seed, portals, start_us, faults, knobs, on_truth)
    for _ in itertools.count() if calls == 0 else range(calls):
        t_us = sim.next_arrival_us()
        yield from sim.release(t_us)
        sim.add_call(t_us)
    yield from sim.drain()


def generate_all(seed: int | str, calls: int, portals: int, start_us: int,
                 faults: Faults = NO_FAULTS, knobs: Knobs = DEFAULT_KNOBS
                 ) -> tuple[list[SimMessage], list[dict[str, Any]]]:
    """``generate`` collected into lists: (messages, truth records). For tests and benches."""
    truth: list[dict[str, Any]] = []
    messages = list(generate(seed, calls, portals, start_us, faults, knobs, truth.append))
    return messages, truth
