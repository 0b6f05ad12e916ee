"""Login throttling: after N failures of one user name or one address in a window, wait.

In memory, per dashboard process, bounded: at most ``MAX_KEYS`` names and
addresses are tracked (the oldest forgotten first), each with at most N
failure times. A success clears the name's failures (not the address's).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

WINDOW_S = 300.0
MAX_KEYS = 10_000


class Throttle:
    """Counts failed logins per key (``user:NAME``, ``addr:IP``) within ``WINDOW_S``."""

    def __init__(self, attempts: int, window_s: float = WINDOW_S, clock=time.monotonic) -> None:
        self.attempts, self.window_s, self.clock = attempts, window_s, clock
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait_s(self, *keys: str) -> float:
        """Seconds until any of ``keys`` may try again (0: now)."""
        now = self.clock()
        longest = 0.0
        with self._lock:
            for key in keys:
                times = self._fails.get(key)
                if times is None:
                    continue
                while times and now - times[0] >= self.window_s:
                    times.popleft()
                if len(times) >= self.attempts:
                    longest = max(longest, self.window_s - (now - times[0]))
        return longest

    def failed(self, *keys: str) -> None:
        """Record one failure of each key."""
        now = self.clock()
        with self._lock:
            for key in keys:
                times = self._fails.pop(key, None) or deque(maxlen=self.attempts)
                times.append(now)
                self._fails[key] = times
            while len(self._fails) > MAX_KEYS:
                self._fails.popitem(last=False)

    def succeeded(self, key: str) -> None:
        """Forget the failures of ``key`` (the right password was given)."""
        with self._lock:
            self._fails.pop(key, None)
