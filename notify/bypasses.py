"""Bypassed calls per portal, counted from the ``controller_bypassed`` alerts notify reads.

An outage's message says how many calls bypassed the Controller during it.
The worker's outage alert carries its span, not that count, and a portal's
alerts share one partition of ``alerts`` in order, so notify counts the
bypass alerts it has read — bounded per portal — and says "unknown" for an
outage that began before what it has seen (after a restart, say) unless the
warehouse can answer (:meth:`Bypasses.fallback`).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from notify.alerts import Alert
from streams.domain.timefmt import parse_ts_us

PER_PORTAL = 1_000  # bypasses remembered per portal (an outage with more asks the warehouse)
EVICT_CHUNK = 100  # past PER_PORTAL, the oldest this many go at once: their newest time is found with one check
PORTALS = 200  # portals remembered (the least recent go): ~200,000 ids, ~35 MiB at most


class Bypasses:
    """The bypassed calls of each portal by event time, as read from the alerts topic."""

    def __init__(self, fallback: Callable[[str, int, int | None], int | None] | None = None) -> None:
        # alert_id -> its ts as written: parsed only when a message asks for a count (rarely), not per alert.
        self._calls: OrderedDict[str, OrderedDict[str, str]] = OrderedDict()
        self._partition: dict[str, int] = {}
        self._coverage: dict[int, int] = {}  # partition -> event time (ms) from which every bypass was read
        self._evicted: dict[str, int] = {}  # portal -> newest event time dropped for the per-portal bound
        self.fallback = fallback

    def from_beginning(self, partition: int) -> None:
        """The partition is read from its first offset: its counts are complete from the start."""
        self._coverage[partition] = -(2**62)

    def see(self, alert: Alert) -> None:
        """Take note of an alert (only controller_bypassed ones are counted; a retracted one is taken back)."""
        if alert.partition not in self._coverage:
            first = _ms(alert.ts)
            if first is None:
                return
            self._coverage[alert.partition] = first
        if alert.type != "controller_bypassed":
            return
        self._partition[alert.portal_id] = alert.partition
        calls = self._calls.get(alert.portal_id)
        if calls is None:
            if len(self._calls) >= PORTALS:
                gone, _ = self._calls.popitem(last=False)
                self._evicted[gone] = 2**62
            calls = self._calls[alert.portal_id] = OrderedDict()
        self._calls.move_to_end(alert.portal_id)
        if alert.state == "retracted":
            calls.pop(alert.alert_id, None)
            return
        calls[alert.alert_id] = alert.ts
        if len(calls) > PER_PORTAL:  # a catch-up of a long outage comes here for most of its bypasses
            pop = calls.popitem
            dropped = newest_ms([pop(last=False)[1] for _ in range(min(EVICT_CHUNK, len(calls)))])
            self._evicted[alert.portal_id] = max(self._evicted.get(alert.portal_id, dropped), dropped)

    def count(self, portal_id: str, start: str, end: str | None) -> int | None:
        """Bypassed calls of the portal with event time in [start, end] (end None: until now); None if unknown."""
        start_ms, end_ms = _ms(start), (_ms(end) if end else None)
        if start_ms is None:
            return None
        calls = self._calls.get(portal_id, {})
        partition = self._partition.get(portal_id)
        covered = partition is not None and self._coverage.get(partition, start_ms + 1) <= start_ms
        if covered and self._evicted.get(portal_id, -(2**62)) < start_ms:
            stamps = [_ms(ts) for ts in calls.values()]
            return sum(1 for ts in stamps if ts is not None and ts >= start_ms and (end_ms is None or ts <= end_ms))
        return self.fallback(portal_id, start_ms, end_ms) if self.fallback else None


_CANONICAL = re.compile(r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\n)*")


def newest_ms(stamps: list[str]) -> int:
    """``max(_ms(ts) or 0 for ts in stamps)``, with one parse when all are written as the worker writes them.

    Timestamps of one fixed-width form order as text as they do in time, so the greatest text is the
    newest time, unless it is not a valid time (a 13th month, say): then each is parsed.
    """
    if stamps and _CANONICAL.fullmatch("\n".join(stamps) + "\n"):
        newest = _ms(max(stamps))
        if newest is not None and newest > 0:  # > 0: a stamp that is not a time counts 0, as below
            return newest
    return max((_ms(ts) or 0 for ts in stamps), default=0)


def _ms(text: str | None) -> int | None:
    if not isinstance(text, str):
        return None
    fast = _fast_ms(text)
    if fast is not None:
        return fast
    micros = parse_ts_us(text)  # the contract's timestamp parser: integer arithmetic, no datetime
    if micros is not None:
        return micros // 1000
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


_TS = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?"
                 r"(?:[Zz]|\+00:00)\Z")
_DAY_MS: dict[str, int | None] = {}  # "YYYY-MM-DD" -> its midnight (ms); None: not a date
DAYS_KEPT = 4096


def _fast_ms(text: str) -> int | None:
    """``parse_ts_us(text) // 1000`` with each day's midnight worked out once (a bypass alert costs one)."""
    match = _TS.match(text)
    if match is None:
        return None
    day, hour, minute, second, fraction = match.groups()
    if day in _DAY_MS:
        midnight = _DAY_MS[day]
    else:
        if len(_DAY_MS) >= DAYS_KEPT:
            _DAY_MS.clear()
        micros = parse_ts_us(day + "T00:00:00Z")
        midnight = _DAY_MS[day] = None if micros is None else micros // 1000
    h, m, s = int(hour), int(minute), int(second)
    if midnight is None or h > 23 or m > 59 or s > 59:
        return None  # the full parser decides (and refuses)
    return midnight + ((h * 60 + m) * 60 + s) * 1000 + (int(fraction.ljust(6, "0")) // 1000 if fraction else 0)
