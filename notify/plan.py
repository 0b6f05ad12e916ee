"""What to send, when: first-start rule, min-hits, grouping, silences and acknowledgements.

Plain logic over plain data (no Kafka, no network, no clock of its own): the
service offers each *item* — one (alert_id, state) owed to one channel by one
route — and ticks it with each partition's watermark (the newest message time
read on it, or the wall clock once caught up). Every decision depends only
on the alerts' message times and the actions read, so a restart that re-reads
the log decides the same. An item ends in exactly one decision: a
:class:`Send` (alone or in a digest) or a :class:`Settle` without sending.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from notify.actions import Actions
from notify.alerts import Alert
from notify.keys import digest_key
from notify.rules import Route
from notify.text import Message, alert_message, digest_message

BEFORE_FIRST_START = "not_delivered_before_first_start"
SILENCED = "silenced"
ACKNOWLEDGED = "acknowledged"
BELOW_MIN_HITS = "below_min_hits"


class Item(NamedTuple):
    """One (alert_id, state) owed to one channel by one route; ``key`` is its idempotency key."""

    key: str
    alert: Alert
    route: Route
    channel: str


class Send(NamedTuple):
    """A message to send: ``key`` is the message's idempotency key (a digest's own, or the item's)."""

    key: str
    channel: str
    items: tuple[Item, ...]
    message: Message


class Settle(NamedTuple):
    """Items settled without a message, and why (``outcome``), e.g. silenced: the silence's id."""

    outcome: str
    items: tuple[Item, ...]
    why: str = ""


Decision = Send | Settle
_NOTHING: tuple[()] = ()  # "no decision yet": one shared object, not a new list per alert


@dataclass(frozen=True)
class FirstStart:
    """The very first start: alerts before ``end_offsets`` older than ``horizon_ms`` are not sent."""

    horizon_ms: int
    end_offsets: dict[int, int] = field(default_factory=dict)

    def skips(self, alert: Alert) -> bool:
        """True for an alert that was on the topic at the first start and is older than the horizon."""
        return alert.offset < self.end_offsets.get(alert.partition, 0) and alert.msg_ts_ms < self.horizon_ms


class Planner:
    """Min-hits windows, digest buffers and the decisions they release."""

    def __init__(self, actions: Actions, *, first_start: FirstStart | None = None, digest_max: int = 500,
                 dash_url: str | None = None, bypasses: Callable | None = None) -> None:
        self.actions = actions
        self.first_start = first_start
        self.digest_max = digest_max
        self.dash_url = dash_url
        self.bypasses = bypasses
        self._hits: dict[tuple[int, str], deque[int]] = {}
        self._held: dict[tuple[int, str], list[Item]] = {}
        self._groups: dict[tuple[int, str, str, int], list[Item]] = {}
        # The partitions each group's items came from: a window closes when all their watermarks pass it
        # (checking these, not every item, keeps a tick's cost to the number of groups).
        self._group_parts: dict[tuple[int, str, str, int], set[int]] = {}

    # ------------------------------------------------------------ input

    def hit(self, alert: Alert, route: Route) -> None:
        """Count a match of ``route`` (only routes with min_hits > 1 keep count)."""
        if route.min_hits <= 1:
            return
        hits = self._hits.setdefault((route.index, alert.portal_id), deque())
        hits.append(alert.msg_ts_ms)
        oldest = alert.msg_ts_ms - route.window_s * 1000
        while hits and hits[0] < oldest:
            hits.popleft()

    def offer(self, item: Item) -> list[Decision] | tuple[()]:
        """A new item: its decisions now, or none yet (held for min-hits or waiting in a digest).

        Runs once per alert of a catch-up: the common case (a grouping route, no min-hits) goes straight
        to its window, and "nothing yet" is one shared empty tuple.
        """
        alert, route = item.alert, item.route
        first = self.first_start  # FirstStart.skips, inline
        if (first is not None and alert.msg_ts_ms < first.horizon_ms
                and alert.offset < first.end_offsets.get(alert.partition, 0)):
            return [Settle(BEFORE_FIRST_START, (item,))]
        if route.group_s > 0 and route.min_hits <= 1:  # the common case, one call less
            return self._group(item)
        if route.min_hits > 1:
            place = (route.index, alert.portal_id)
            held = self._held.setdefault(place, [])
            if self._count(place, alert.msg_ts_ms, route.window_s) < route.min_hits:
                held.append(item)
                return _NOTHING
            released = [*held, item]
            del self._held[place]
            return [d for it in released for d in self._route_out(it)]
        return self._route_out(item)

    def tick(self, watermarks: dict[int, int]) -> list[Decision]:
        """Flush the digests whose window has ended and expire held items, by partition watermark."""
        decisions: list[Decision] = []
        for place, group in list(self._groups.items()):
            end = place[3] + group[0].route.group_s * 1000
            if all(watermarks.get(partition, 0) >= end for partition in self._group_parts[place]):
                del self._groups[place]
                del self._group_parts[place]
                decisions += self._flush(group, more=False)
        for place, held in list(self._held.items()):
            keep, expired = [], []
            for it in held:
                late = it.alert.msg_ts_ms + it.route.window_s * 1000
                (expired if watermarks.get(it.alert.partition, 0) > late else keep).append(it)
            if expired:
                decisions.append(Settle(BELOW_MIN_HITS, tuple(expired),
                                        f"fewer than {expired[0].route.min_hits} alerts within "
                                        f"{expired[0].route.window_s} s"))
            if keep:
                self._held[place] = keep
            else:
                del self._held[place]
        return decisions

    @property
    def waiting(self) -> int:
        """Items held for min-hits or waiting in a digest."""
        return sum(map(len, self._held.values())) + sum(map(len, self._groups.values()))

    # ------------------------------------------------------------ decisions

    def _count(self, place: tuple[int, str], at_ms: int, window_s: int) -> int:
        hits = self._hits.get(place, ())
        return sum(1 for ts in hits if at_ms - window_s * 1000 <= ts <= at_ms)

    def _route_out(self, item: Item) -> list[Decision] | tuple[()]:
        if item.route.group_s <= 0:
            blocked = self._blocked(item)
            return [blocked] if blocked else [self._single(item)]
        return self._group(item)

    def _group(self, item: Item) -> list[Decision] | tuple[()]:
        """Into its digest window; the digest goes out once it holds ``digest_max`` items."""
        alert, route = item.alert, item.route
        ts = alert.msg_ts_ms
        place = (route.index, alert.portal_id, item.channel, ts - ts % (route.group_s * 1000))
        group = self._groups.get(place)
        if group is None:
            group = self._groups[place] = []
            self._group_parts[place] = {alert.partition}
        else:
            self._group_parts[place].add(alert.partition)
        group.append(item)
        if len(group) < self.digest_max:
            return _NOTHING
        del self._groups[place]
        del self._group_parts[place]
        return self._flush(group, more=True)

    def _flush(self, group: list[Item], *, more: bool) -> list[Decision]:
        decisions: list[Decision] = []
        sendable: list[Item] = []
        if not self.actions.silences and not self.actions.acks:  # nothing can block: no check per item
            sendable = group
        else:
            for it in group:
                blocked = self._blocked(it)
                if blocked:
                    decisions.append(blocked)
                else:
                    sendable.append(it)
        if len(sendable) == 1 and not more:
            decisions.append(self._single(sendable[0]))
        elif sendable:
            first = sendable[0]
            width = first.route.group_s * 1000
            start = first.alert.msg_ts_ms - first.alert.msg_ts_ms % width
            key = digest_key(first.channel, [it.key for it in sendable])
            message = digest_message(first.alert.portal_id, first.route.name, (start, start + width),
                                     [it.alert for it in sendable], key, more=more, dash_url=self.dash_url)
            decisions.append(Send(key, first.channel, tuple(sendable), message))
        return decisions

    def _blocked(self, item: Item) -> Settle | None:
        """A Settle when a silence or an acknowledgement keeps the item from being sent."""
        alert = item.alert
        silence = self.actions.silenced(alert.portal_id, alert.type, alert.msg_ts_ms)
        if silence is not None:
            return Settle(SILENCED, (item,), f"{silence.silence_id} by {silence.by}: {silence.reason}"[:300])
        if alert.state == "open" and alert.alert_id in self.actions.acks:
            by, at = self.actions.acks[alert.alert_id]
            return Settle(ACKNOWLEDGED, (item,), f"by {by} at {at}")
        return None

    def _single(self, item: Item) -> Send:
        ack = self.actions.acks.get(item.alert.alert_id)
        message = alert_message(item.alert, item.key, dash_url=self.dash_url, bypasses=self.bypasses, ack=ack)
        return Send(item.key, item.channel, (item,), message)
