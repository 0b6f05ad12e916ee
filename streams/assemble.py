"""One batch of ``call-events`` (and sweep commands) through the pure core.

Crash safety without Kafka transactions: for each batch the worker
1. validates, folds and decides outputs with the pure core (nothing written);
2. sends CDRs, alerts, DLQ records and portal signals, and flushes the producer;
3. only then writes the new call states to the changelog-backed tables, and
   waits until the broker has them.
Faust commits the batch's offsets later, once it is acknowledged. A crash
before 2 completes re-processes the batch and re-sends the same
(version, CDR) pairs (versions are deterministic per call); a crash between 2
and 3 does the same; after 3, re-delivered events are duplicates by
``event_id`` and send nothing, because their outputs were already durable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import orjson
from faust.types import EventT

from streams.app import Worker
from streams.call_store import CallStore
from streams.outbox import Outbox
from streams.domain.calls import Outputs, advance, expire, needs_expiry, settled
from streams.domain.dlq import encode_dlq
from streams.domain.events import Event, Rejection
from streams.domain.state import CallState
from streams.domain.validation import validate


@dataclass
class _Pending:
    """A call touched by this batch: the event that anchors its partition and its new state."""

    anchor: EventT
    state: CallState | None
    from_archive: bool
    dirty: bool = False
    events: list[Event] = field(default_factory=list)


class CallBatches:
    """Turns batches of Kafka events into outputs and state writes."""

    def __init__(self, worker: Worker, store: CallStore) -> None:
        self.worker = worker
        self.store = store
        self.commands_topic = worker.commands.get_topic_name()
        settings = worker.settings
        self.topic_cdrs, self.topic_alerts, self.topic_dlq = (
            settings.topic_cdrs, settings.topic_alerts, settings.topic_dlq)
        self.topic_signals = worker.signals.get_topic_name()
        self.outbox = Outbox()
        self.signals: dict[str, list] = {}
        self.counts = {"events": 0, "rejected": 0, "cdrs": 0, "alerts": 0}

    async def process(self, batch: Sequence[EventT]) -> None:
        """Steps 1-3 of the module docstring for one batch."""
        now = time.time()
        pending: dict[str, _Pending] = {}
        commands: list[tuple[EventT, dict]] = []
        for kafka_event in batch:  # each: the records of one partition from one fetch
            if kafka_event.message.topic == self.commands_topic:
                commands.extend((kafka_event, orjson.loads(record.value)) for record in kafka_event.value)
                continue
            for record in kafka_event.value:
                self._decode(kafka_event, record, pending)
        for call_id, item in pending.items():
            state, outputs = advance(item.state, item.events, self.worker.tariffs, self.worker.rules,
                                     now, item.anchor.message.partition)
            if state is not None:
                item.state, item.dirty = state, True
            self._send(call_id, outputs)
        archive = self._run_commands(commands, pending, now)
        self._queue_signals()
        await self.outbox.flush(self.worker.app.producer)
        for item in pending.values():
            if item.dirty:
                self.store.save(item.anchor, item.state)
        await self.store.flush_changelog(self.worker.app.producer)
        if archive:
            await self._archive(archive)

    def _decode(self, kafka_event: EventT, record, pending: dict[str, _Pending]) -> None:
        self.counts["events"] += 1
        result = validate(record.value, record.key)
        if isinstance(result, Rejection):
            self.counts["rejected"] += 1
            self.outbox.add(self.topic_dlq, record.key, encode_dlq(
                result, record.topic, record.partition, record.offset, record.value))
            return
        item = pending.get(result.call_id)
        if item is None:
            state, from_archive = self.store.load(kafka_event, result.call_id)
            item = pending[result.call_id] = _Pending(kafka_event, state, from_archive)
        item.anchor = kafka_event
        item.events.append(result)

    def _run_commands(self, commands: list[tuple[EventT, dict]], pending: dict[str, _Pending],
                      now: float) -> list[tuple[EventT, CallState]]:
        """Apply the sweep's expire/forget commands; returns the calls to archive."""
        settings = self.worker.settings
        archive: list[tuple[EventT, CallState]] = []
        for kafka_event, command in commands:
            call_id = command["call_id"]
            item = pending.get(call_id)
            if item is None:
                state, from_archive = self.store.load(kafka_event, call_id)
                item = pending[call_id] = _Pending(kafka_event, state, from_archive)
            state = item.state
            if state is None or item.from_archive or state.touched_at != command["touched_at"]:
                continue  # gone, or an event arrived after the command was issued
            if command["kind"] == "expire" and needs_expiry(state, now, settings.incomplete_after):
                item.state, outputs = expire(state, self.worker.tariffs, self.worker.rules)
                item.dirty = True
                self._send(call_id, outputs)
            elif command["kind"] == "forget" and settled(state) and not item.dirty \
                    and now - state.touched_at >= settings.forget_after:
                archive.append((item.anchor, state))
        return archive

    async def _archive(self, archive: list[tuple[EventT, CallState]]) -> None:
        # The archive copy must be durable before the hot copy is deleted, or a
        # crash in between could lose the call's state.
        for anchor, state in archive:
            self.store.archive_state(anchor, state)
        await self.worker.app.producer.flush()
        for anchor, state in archive:
            self.store.drop_hot(anchor, state.call_id)
        await self.store.flush_changelog(self.worker.app.producer)

    def _send(self, call_id: str, outputs: Outputs) -> None:
        key = call_id.encode()
        for cdr in outputs.cdrs:
            self.outbox.add(self.topic_cdrs, key, cdr)
        for portal_id, alert in outputs.alerts:
            self.outbox.add(self.topic_alerts, portal_id.encode(), alert)
        if outputs.signal is not None:
            signal = outputs.signal
            self.signals.setdefault(signal.portal_id, []).append(
                [signal.call_id, signal.verdict, signal.ts_us])
        self.counts["cdrs"] += len(outputs.cdrs)
        self.counts["alerts"] += len(outputs.alerts)

    def _queue_signals(self) -> None:
        # One message per portal per batch: the outage rule needs every verdict,
        # but not one Kafka message each.
        for portal_id, signals in self.signals.items():
            self.outbox.add(self.topic_signals, portal_id.encode(), orjson.dumps(signals))
        self.signals.clear()
