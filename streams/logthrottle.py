"""Keep a flood of identical log records down to one line per interval.

While the broker is unreachable, aiokafka logs the same connection error
thousands of times a second (6 MB of log in 10 s, measured). This filter lets
the first record of each (logger, message template) through, drops the
repeats for ``interval`` seconds, then lets one through saying how many were
dropped.
"""

from __future__ import annotations

import logging
import time


class Throttle(logging.Filter):
    """A logging filter: at most one record per (logger, template) per ``interval`` seconds."""

    def __init__(self, interval: float = 5.0, clock=time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._last: dict[tuple[str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        now = self.clock()
        seen = self._last.get(key)
        if seen is not None and now - seen[0] < self.interval:
            self._last[key] = (seen[0], seen[1] + 1)
            return False
        if seen is not None and seen[1]:
            record.msg = f"{record.msg} [{seen[1]} like it in the last {self.interval:.0f} s not shown]"
        if len(self._last) > 10_000:
            self._last.clear()
        self._last[key] = (now, 0)
        return True


def install(interval: float = 5.0) -> None:
    """Attach one throttle to the root logger's handlers.

    On the handlers, not on the loggers: a logger's own filters never see the
    records its children (``aiokafka.conn``) propagate to it.
    """
    throttle = Throttle(interval)
    for handler in logging.getLogger().handlers:
        handler.addFilter(throttle)
