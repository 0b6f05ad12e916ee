"""Retry delays: exponential backoff with full jitter, and when to give up."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """``attempts`` tries in all; the n-th retry waits a random time in [0, min(cap, base × 2^(n-1))].

    Full jitter (AWS's "Exponential Backoff and Jitter"): channels that failed together
    do not retry together.
    """

    base_s: float = 1.0
    cap_s: float = 60.0
    attempts: int = 8

    def ceiling(self, failures: int) -> float:
        """The longest wait after ``failures`` failed attempts (>= 1)."""
        return min(self.cap_s, self.base_s * 2 ** min(max(failures, 1) - 1, 60))

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """A random wait before the next attempt after ``failures`` failed ones."""
        return (rng or random).uniform(0.0, self.ceiling(failures))

    def exhausted(self, failures: int) -> bool:
        """True when no attempt is left after ``failures`` failed ones."""
        return failures >= self.attempts

    @property
    def budget_s(self) -> float:
        """The longest a message can spend retrying: the sum of the delay ceilings."""
        return sum(self.ceiling(n) for n in range(1, self.attempts))
