"""The Controller's life per portal: outages, saved keys, development copies, licences.

Each portal alternates between "up" and "down" periods of its Controller
(exponential lengths; the share of time down is ``Knobs.outage_rate``). While
it is down, the voice servers bypass it with the direct-access key that the
Controller saved at the portal's daily save time before the outage began; for
a share ``Knobs.stale_key`` of outages the daily saves had been failing for
days, so the key is older than 27 h (the pipeline's threshold is 26 h; a fresh
key is at most 24 h + one outage, at most 25 h, old). Development copies of a
portal come and go the same way and steal calls as ``config_not_found``.
Periods are advanced lazily as event time reaches them, so the model is
deterministic for a given random stream and costs nothing for idle portals.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from streams.simulator.knobs import Knobs

_MIN_US = 60_000_000
_HOUR_US = 3600 * 1_000_000
_DAY_US = 24 * _HOUR_US
OUTAGE_MEAN_US = 10 * _MIN_US
OUTAGE_MAX_US = 60 * _MIN_US
DEV_COPY_MEAN_US = 30 * _MIN_US
DEV_COPY_STEALS = 0.7  # share of a portal's calls the development copy takes while it runs
STALE_AGE_US = 27 * _HOUR_US


@dataclass(frozen=True, slots=True)
class Verdict:
    """What happens when a call asks the Controller: a reply, or a bypass."""

    outcome: str                  # "ok", "license_error", "config_not_found" or "bypassed"
    config_id: str | None = None
    reason: str | None = None     # bypass reason
    key_saved_at_us: int | None = None


class _Periods:
    """Alternating up/down periods; ``down_at(t)`` answers for non-decreasing ``t``."""

    def __init__(self, rng: random.Random, share: float, mean_down_us: int, start_us: int) -> None:
        self._rng = rng
        self._mean_down = mean_down_us
        self._mean_up = mean_down_us * (1 - share) / share if share > 0 else None
        self.down_from = self.down_until = start_us
        if self._mean_up is not None:
            self._schedule(start_us)

    def _schedule(self, after_us: int) -> None:
        up = int(self._rng.expovariate(1 / self._mean_up)) if self._mean_up else 0
        down = min(OUTAGE_MAX_US, _MIN_US + int(self._rng.expovariate(1 / self._mean_down)))
        self.down_from = after_us + up
        self.down_until = self.down_from + down

    def down_at(self, t_us: int) -> bool:
        """True when ``t_us`` falls in a down period; may open the next period."""
        if self._mean_up is None:
            return False
        while t_us >= self.down_until:
            self._schedule(self.down_until)
            self.on_new_period()
        return t_us >= self.down_from

    def on_new_period(self) -> None:
        """Hook for subclasses: a new down period was scheduled."""


class _Outages(_Periods):
    """Controller outages, each with its bypass reason and the key the voice servers hold."""

    def __init__(self, rng: random.Random, knobs: Knobs, save_offset_us: int, start_us: int) -> None:
        self._stale_share = knobs.stale_key
        self._save_offset = save_offset_us
        self.reason = "timeout"
        self.key_saved_at_us = 0
        super().__init__(rng, knobs.outage_rate, OUTAGE_MEAN_US, start_us)
        self.on_new_period()

    def on_new_period(self) -> None:
        """Draw the new outage's bypass reason and the key the voice servers hold during it."""
        rng = self._rng
        roll = rng.random()
        self.reason = "timeout" if roll < 0.5 else "unreachable" if roll < 0.85 else "error"
        start = self.down_from
        key = start - (start - self._save_offset) % _DAY_US  # the last daily save before it
        if rng.random() < self._stale_share:
            key -= _DAY_US * rng.randint(1, 3)
            while start - key < STALE_AGE_US:
                key -= _DAY_US
        # The daily save job does not start on the exact second.
        self.key_saved_at_us = key - rng.randrange(0, 90_000_000)


class ControllerLife:
    """The Controller as one portal sees it, as event time goes by."""

    def __init__(self, rng: random.Random, knobs: Knobs, config_id: str,
                 save_offset_us: int, start_us: int) -> None:
        self._rng = rng
        self._config_id = config_id
        self._license_errors = knobs.license_errors
        self._outages = _Outages(rng, knobs, save_offset_us, start_us)
        self._dev_copy = _Periods(rng, knobs.dev_copy, DEV_COPY_MEAN_US, start_us)

    def verdict(self, t_us: int) -> Verdict:
        """What the call asking at ``t_us`` gets; ``t_us`` must not decrease between calls."""
        outages = self._outages
        if outages.down_at(t_us):
            return Verdict("bypassed", reason=outages.reason, key_saved_at_us=outages.key_saved_at_us)
        rng = self._rng
        if self._dev_copy.down_at(t_us) and rng.random() < DEV_COPY_STEALS:
            return Verdict("config_not_found")
        if rng.random() < self._license_errors:
            return Verdict("license_error", config_id=self._config_id)
        return Verdict("ok", config_id=self._config_id)
