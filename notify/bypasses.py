"""Bypassed calls per portal, counted from the ``controller_bypassed`` alerts notify reads.

An outage's message says how many calls bypassed the Controller during it.
The worker's outage alert carries its span, not that count, and a portal's
alerts share one partition of ``alerts`` in order, so notify counts the
bypass alerts it has read — bounded per portal — and says "unknown" for an
outage that began before what it has seen (after a restart, say) unless the
warehouse can answer (:meth:`Bypasses.fallback`).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Callable

from notify.alerts import Alert

PER_PORTAL = 20_000
PORTALS = 5_000


class Bypasses:
    """The bypassed calls of each portal by event time, as read from the alerts topic."""

    def __init__(self, fallback: Callable[[str, int, int | None], int | None] | None = None) -> None:
        self._calls: OrderedDict[str, OrderedDict[str, int]] = OrderedDict()
        self._since: dict[str, int] = {}  # event time (ms) from which a portal's count is complete
        self.fallback = fallback

    def see(self, alert: Alert) -> None:
        """Take note of a controller_bypassed alert (a retracted one is taken back)."""
        if alert.type != "controller_bypassed":
            return
        ts = _ms(alert.ts)
        if ts is None:
            return
        calls = self._calls.get(alert.portal_id)
        if calls is None:
            if len(self._calls) >= PORTALS:
                gone, _ = self._calls.popitem(last=False)
                self._since.pop(gone, None)
            calls = self._calls[alert.portal_id] = OrderedDict()
            self._since[alert.portal_id] = ts
        self._calls.move_to_end(alert.portal_id)
        if alert.state == "retracted":
            calls.pop(alert.alert_id, None)
            return
        calls[alert.alert_id] = ts
        self._since[alert.portal_id] = min(self._since[alert.portal_id], ts)
        if len(calls) > PER_PORTAL:
            _, dropped = calls.popitem(last=False)
            self._since[alert.portal_id] = max(self._since[alert.portal_id], dropped + 1)

    def count(self, portal_id: str, start: str, end: str | None) -> int | None:
        """Bypassed calls of the portal with event time in [start, end] (end None: until now); None if unknown."""
        start_ms, end_ms = _ms(start), (_ms(end) if end else None)
        if start_ms is None:
            return None
        calls = self._calls.get(portal_id)
        if calls is not None and self._since.get(portal_id, start_ms + 1) <= start_ms:
            return sum(1 for ts in calls.values() if ts >= start_ms and (end_ms is None or ts <= end_ms))
        return self.fallback(portal_id, start_ms, end_ms) if self.fallback else None


def _ms(text: str | None) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None
