"""When calls start: a Poisson process that follows Moscow business hours.

The rate is ``peak_per_s`` times the share of the local hour (Moscow, UTC+3)
in ``HOURLY_SHARE``, times ``WEEKEND_SHARE`` on Saturdays and Sundays. Arrivals
are drawn by thinning (candidates at the peak rate, each kept with the
current share), which is exact for a time-varying rate.
"""

from __future__ import annotations

import random

_S = 1_000_000
MOSCOW_OFFSET_S = 3 * 3600
HOURLY_SHARE = (0.02, 0.02, 0.02, 0.02, 0.02, 0.03, 0.05, 0.15, 0.5, 1.0, 1.0, 1.0,
                1.0, 0.8, 1.0, 1.0, 1.0, 1.0, 0.6, 0.3, 0.15, 0.1, 0.05, 0.03)
WEEKEND_SHARE = 0.2


def share_at(t_us: int) -> float:
    """Share of the peak call rate at event time ``t_us``."""
    local_s = t_us // _S + MOSCOW_OFFSET_S
    # 1970-01-01 was a Thursday: day 0 has weekday 3 (Monday = 0).
    weekday = (local_s // 86_400 + 3) % 7
    share = HOURLY_SHARE[(local_s // 3600) % 24]
    return share * WEEKEND_SHARE if weekday >= 5 else share


class Arrivals:
    """Start times of successive calls; the first is ``start_us`` itself."""

    def __init__(self, rng: random.Random, peak_per_s: float, start_us: int) -> None:
        self._rng = rng
        self._mean_gap_us = _S / peak_per_s
        self._t = start_us
        self._first = True

    def next_us(self) -> int:
        """The next call's start time, microseconds (whole milliseconds)."""
        if self._first:
            self._first = False
            return self._t - self._t % 1000
        rng = self._rng
        while True:
            self._t += int(rng.expovariate(1.0) * self._mean_gap_us)
            if rng.random() < share_at(self._t):
                return self._t - self._t % 1000
