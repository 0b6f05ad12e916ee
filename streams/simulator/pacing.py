"""Pacing: when calls start and when their messages are released.

``fast`` makes calls as quickly as the consumer of its messages takes them,
event time following the business-hours arrival process; ``paced`` makes
``rate`` calls per wall-clock second and releases each event when wall time
reaches its event time, for a live demo.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator

from streams.simulator.engine import SimMessage, Simulator


def fast(sim: Simulator, calls: int, stop: Callable[[], bool]) -> Iterator[SimMessage]:
    """As fast as possible: event time follows the business-hours arrival process."""
    made = 0
    while not stop() and (calls == 0 or made < calls):
        t_us = sim.next_arrival_us()
        yield from sim.release(t_us)
        sim.add_call(t_us)
        made += 1
    yield from sim.drain()


def paced(sim: Simulator, calls: int, rate: float, start_us: int, rng: random.Random,
          stop: Callable[[], bool], clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> Iterator[SimMessage]:
    """``rate`` calls per wall second (Poisson); event time advances with wall time.

    Call start times are ``start_us`` plus the drawn gaps, so they are
    reproducible; events are released when wall time reaches their event time.
    Once the last call has started (or on stop) everything left is sent at once.
    """
    origin = clock()
    offset_us, made = 0, 0
    while not stop() and (calls == 0 or made < calls):
        due = origin + offset_us / 1e6
        while not stop() and (now := clock()) < due:
            yield from sim.release(start_us + int((now - origin) * 1e6))
            sleep(min(0.05, due - now))
        if stop():
            break
        yield from sim.release(start_us + offset_us)
        sim.add_call(start_us + offset_us)
        made += 1
        offset_us += int(rng.expovariate(rate) * 1e6)
    yield from sim.drain()
