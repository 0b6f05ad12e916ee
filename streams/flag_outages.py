"""The ``flag_outages`` agent's batches: portal signals -> ``controller_outage`` alerts.

Each message on ``<group>-portal-signals`` is a JSON list of one portal's
call verdicts (key = portal), sent by ``assemble_cdrs`` once per portal per
batch. The rule itself is pure (streams.domain.outages).

Unlike the calls' outputs, a portal's state is stored *before* its alerts are
sent. The state remembers which outages it sent, so that it can retract one
that later verdicts undo; an alert sent by a worker killed before its state
was stored would be unknown to the state its successor restores, and never
retracted. So each state is stored (acknowledged by the broker) together with
the alerts it decided (``unsent``), then the alerts are sent; whoever loads a
state without knowing that its alerts went out — a restarted worker, or one
that took the partition over — sends them again (the same payloads: harmless).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence

import orjson
from faust.types import EventT

from streams.app import Worker
from streams.domain.outages import (
    OutageState,
    PortalSignal,
    apply_signals,
    outage_state_from_bytes,
    outage_state_to_bytes,
)
from streams.faust_fence.stores import memory_dict
from streams.outbox import Outbox, partition_of

log = logging.getLogger("callstream.worker")
DELIVERED_CACHE = 1024  # parsed portal states kept beside the table, at most
# ... and at most this many verdicts in them all: a parsed state costs ~270 bytes per
# verdict (a full portal, 4,096 verdicts, ~1.1 MB), so 1,024 busy portals would have
# held over 1 GiB. 262,144 is ~70 MB: 64 portals at the cap, each parsed once.
DELIVERED_VERDICTS = 262_144


def _signals(record) -> list | None:
    """A signals message's [call_id, verdict, ts_us] triples; anything else on this
    internal topic (only workers write it) is logged and skipped, never a reason to stop."""
    try:
        signals = orjson.loads(record.value)
        if record.key and type(signals) is list and all(
                type(s) is list and len(s) == 3 and type(s[0]) is str and s[1] in ("bypassed", "checked")
                and type(s[2]) is int for s in signals):
            record.key.decode()
            return signals
    except (orjson.JSONDecodeError, TypeError, UnicodeDecodeError):
        pass
    log.warning("skipped a malformed signals message at %s[%s]@%s", record.topic, record.partition,
                record.offset)
    return None


def _weight(state: OutageState) -> int:
    """What a parsed state costs the cache, in verdicts (its window's and its open ones)."""
    return len(state.verdicts) + len(state.window) + len(state.base.window) + 1


class ParsedStates:
    """Parsed portal states beside the table, least recently used first, bounded in
    portals and in verdicts (a cache: losing an entry costs one parse)."""

    def __init__(self, max_portals: int = DELIVERED_CACHE, max_verdicts: int = DELIVERED_VERDICTS):
        self.max_portals, self.max_verdicts = max_portals, max_verdicts
        self._entries: OrderedDict[bytes, tuple[bytes, OutageState]] = OrderedDict()
        self.verdicts = 0  # in the states held

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes, blob: bytes) -> OutageState | None:
        """The parsed state of ``blob`` if it is the one put under ``key``, else None."""
        entry = self._entries.get(key)
        if entry is None or not (entry[0] is blob or entry[0] == blob):
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: bytes, blob: bytes, state: OutageState) -> None:
        self.forget(key)
        self._entries[key] = (blob, state)
        self.verdicts += _weight(state)
        while len(self._entries) > 1 and (len(self._entries) > self.max_portals
                                          or self.verdicts > self.max_verdicts):
            self.forget(next(iter(self._entries)))

    def forget(self, key: bytes) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.verdicts -= _weight(entry[1])


class OutageBatches:
    """Per-portal outage machines over batches of signal messages."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        # portal key -> (the bytes this process stored and whose alerts it sent, their
        # parsed state): a busy portal's state is thousands of verdicts, parsed once
        # rather than once per batch. Only the most recently used portals are kept:
        # the table holds every portal's bytes already, this is a cache beside it.
        self._delivered = ParsedStates()
        # portal key -> its partition, least recently used first (for the eviction below)
        self._used: OrderedDict[bytes, int] = OrderedDict()

    def _table(self) -> dict:
        return memory_dict(self.worker.outages_by_portal)

    async def process(self, batch: Sequence[EventT]) -> None:
        states: dict[bytes, tuple[EventT, OutageState]] = {}
        unsent: dict[bytes, list[bytes]] = {}
        for kafka_event in batch:  # each: the records of one partition from one fetch
            for record in kafka_event.value:
                signals = _signals(record)
                if signals is None:
                    continue
                key = record.key
                portal_id = key.decode()
                if key in states:
                    state = states[key][1]
                else:
                    state = self._load(key, portal_id)
                    unsent[key] = list(state.unsent)  # [] when this process delivered them
                signals = [PortalSignal(portal_id, call_id, verdict, ts_us)
                           for call_id, verdict, ts_us in signals]
                state, alerts = apply_signals(state, signals, self.worker.rules)
                unsent[key] += (payload for _alert, payload in alerts)
                states[key] = (kafka_event, state)
        changelog, outbox = Outbox(), Outbox()
        changelog_topic = self.worker.outages_by_portal.changelog_topic.get_topic_name()
        written = {}
        for key, (anchor, state) in states.items():
            state = state._replace(unsent=tuple(unsent[key]))
            blob = outage_state_to_bytes(state)
            self._table()[key] = blob
            changelog.add(changelog_topic, key, blob, anchor.message.partition)
            written[key] = (blob, state._replace(unsent=()))
            for payload in unsent[key]:
                outbox.add(self.worker.settings.topic_alerts, key, payload)
        await changelog.flush(self.worker.app.producer)
        await outbox.flush(self.worker.app.producer)
        for key, (blob, state) in written.items():
            self._delivered.put(key, blob, state)
        for key, (anchor, _state) in states.items():
            self._used[key] = anchor.message.partition
            self._used.move_to_end(key)
        if len(self._table()) > self.worker.settings.max_portals:
            await self._evict_idle(changelog_topic)

    async def _evict_idle(self, changelog_topic: str) -> None:
        """Over CALLSTREAM_MAX_PORTALS portals in memory (a flood of made-up portal ids is input
        too): forget the least recently used portals of this worker's own partitions that
        have no open outage and no alert waiting to go out. Such a portal starts afresh if
        it sends verdicts again; what it loses is the memory of outages already over."""
        table = self._table()
        signals_topic = self.worker.signals.get_topic_name()
        actives = {tp.partition for tp in self.worker.app.assignor.assigned_actives()
                   if tp.topic == signals_topic}
        partitions = list(range(self.worker.settings.events_partitions))
        unknown = [key for key in table if key not in self._used]  # restored, never used here
        order = [(key, partition_of(key, partitions)) for key in unknown] + list(self._used.items())
        tombstones = Outbox()
        limit = self.worker.settings.max_portals
        excess = len(table) - limit * 9 // 10
        for key, partition in order:
            if excess <= 0:
                break
            blob = table.get(key)
            if partition not in actives or not blob:
                continue
            try:
                state = outage_state_from_bytes(blob)
            except ValueError:
                state = None
            if state is not None and (state.open is not None or state.unsent):
                continue
            del table[key]
            self._used.pop(key, None)
            self._delivered.forget(key)
            tombstones.add(changelog_topic, key, None, partition)
            excess -= 1
        if tombstones.messages:
            log.info("flag_outages: forgot %d idle portals (over %d in memory)", len(tombstones.messages),
                     limit)
            await tombstones.flush(self.worker.app.producer)

    def _load(self, key: bytes, portal_id: str) -> OutageState:
        blob = self._table().get(key)
        if not blob:
            return OutageState(portal_id)
        delivered = self._delivered.get(key, blob)
        if delivered is not None:
            return delivered  # what this process stored and sent, not replaced since
        try:
            state = outage_state_from_bytes(blob)
        except ValueError as exc:
            # A state this version cannot read (an older format): the portal's
            # outages restart from the verdicts that arrive from now on. Losing
            # that is better than a worker that can never start.
            log.warning("portal %s: outage state unreadable (%s); starting it afresh", portal_id, exc)
            return OutageState(portal_id)
        return state
