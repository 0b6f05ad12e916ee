"""One batch of ``call-events`` (and sweep commands) through the pure core.

Crash safety without Kafka transactions: for each batch the worker
1. validates, folds and decides outputs with the pure core (nothing written) —
   the compiled one of ``streams/native.py`` where it takes the step;
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
from streams.call_store import CallStore, Summary
from streams.outbox import Outbox
from streams.domain.calls import Outputs, advance, expire, needs_expiry, settled
from streams.domain.dlq import encode_dlq
from streams.domain.events import Event, Rejection
from streams.domain.state import CallState, state_from_bytes
from streams.domain.validation import validate
from streams.native import Guard, native_validate


@dataclass
class _Pending:
    """A call touched by this batch: the event that anchors its partition, its state, its events.

    The state is held as bytes (``blob``) while only the compiled core has
    touched it, and as a ``CallState`` once the Python core has: ``state``,
    when set, is the newer of the two.
    """

    anchor: EventT
    blob: bytes | None
    from_archive: bool
    state: CallState | None = None
    dirty: bool = False
    native: bool = True  # every event came through the compiled validator
    track: tuple | None = None  # the compiled core's (touched_at, version, done)
    events: list = field(default_factory=list)  # Event or NativeEvent, in arrival order


class CallBatches:
    """Turns batches of Kafka events into outputs and state writes."""

    def __init__(self, worker: Worker, store: CallStore) -> None:
        self.worker = worker
        self.store = store
        self.native = worker.native
        self.native_validate = native_validate() if worker.native is not None else None
        self.guard = Guard() if worker.native is not None else None
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
            self._decode(kafka_event, pending)
        for call_id, item in pending.items():
            self._advance(call_id, item, now)
        archive = self._run_commands(commands, pending, now)
        self._queue_signals()
        await self.outbox.flush(self.worker.app.producer)
        for call_id, item in pending.items():
            if not item.dirty:
                continue
            if item.state is not None:
                self.store.save(item.anchor, item.state)
            else:
                self.store.save_blob(item.anchor, item.blob,
                                     Summary(call_id, item.anchor.message.partition, *item.track))
        await self.store.flush_changelog(self.worker.app.producer)
        if archive:
            await self._archive(archive)

    def _decode(self, kafka_event: EventT, pending: dict[str, _Pending]) -> None:
        """Validate one fetch's records into the batch's calls; rejections go to the DLQ."""
        records = kafka_event.value
        self.counts["events"] += len(records)
        fast, guard = self.native_validate, self.guard
        for record in records:
            event = guard(fast, record.value, record.key) if fast is not None else None
            native = event is not None
            if not native:
                event = validate(record.value, record.key)
                if isinstance(event, Rejection):
                    self.counts["rejected"] += 1
                    self.outbox.add(self.topic_dlq, record.key, encode_dlq(
                        event, record.topic, record.partition, record.offset, record.value))
                    continue
            item = pending.get(event.call_id)
            if item is None:
                blob, from_archive = self.store.load_blob(kafka_event, event.call_id)
                item = pending[event.call_id] = _Pending(kafka_event, blob, from_archive)
            item.anchor = kafka_event
            item.events.append(event)
            if not native:
                item.native = False

    def _advance(self, call_id: str, item: _Pending, now: float) -> None:
        """One call's step: the compiled core when it takes it, else the Python core."""
        partition = item.anchor.message.partition
        if item.native and self.native is not None:
            result = self.guard(self.native.advance, item.blob, item.events, now, partition)
            if result is not None:
                blob, cdrs, alerts, signal, track = result
                if blob is not None:
                    item.blob, item.track, item.dirty = blob, track, True
                self._send(call_id, cdrs, alerts, signal)
                return
        events = [event if type(event) is Event else _python_event(event) for event in item.events]
        state, outputs = advance(self._state(item), events, self.worker.tariffs, self.worker.rules,
                                 now, partition)
        if state is not None:
            item.state, item.dirty = state, True
        self._send(call_id, outputs.cdrs, outputs.alerts, _signal(outputs))

    @staticmethod
    def _state(item: _Pending) -> CallState | None:
        if item.state is None and item.blob is not None:
            item.state = state_from_bytes(item.blob)
        return item.state

    def _run_commands(self, commands: list[tuple[EventT, dict]], pending: dict[str, _Pending],
                      now: float) -> list[tuple[EventT, CallState]]:
        """Apply the sweep's expire/forget commands; returns the calls to archive."""
        settings = self.worker.settings
        archive: list[tuple[EventT, CallState]] = []
        for kafka_event, command in commands:
            call_id = command["call_id"]
            item = pending.get(call_id)
            if item is None:
                blob, from_archive = self.store.load_blob(kafka_event, call_id)
                item = pending[call_id] = _Pending(kafka_event, blob, from_archive)
            state = self._state(item)
            if state is None or item.from_archive or state.touched_at != command["touched_at"]:
                continue  # gone, or an event arrived after the command was issued
            if command["kind"] == "expire" and needs_expiry(state, now, settings.incomplete_after):
                item.state, outputs = expire(state, self.worker.tariffs, self.worker.rules)
                item.dirty = True
                self._send(call_id, outputs.cdrs, outputs.alerts, _signal(outputs))
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

    def _send(self, call_id: str, cdrs: list[bytes], alerts: list[tuple[str, bytes]],
              signal: tuple | None) -> None:
        """Queue one call's CDR versions, alerts and its (portal, call, verdict, ts) signal."""
        key = call_id.encode()
        for cdr in cdrs:
            self.outbox.add(self.topic_cdrs, key, cdr)
        for portal_id, alert in alerts:
            self.outbox.add(self.topic_alerts, portal_id.encode(), alert)
        if signal is not None:
            portal_id, call, verdict, ts_us = signal
            self.signals.setdefault(portal_id, []).append([call, verdict, ts_us])
        self.counts["cdrs"] += len(cdrs)
        self.counts["alerts"] += len(alerts)

    def _queue_signals(self) -> None:
        # One message per portal per batch: the outage rule needs every verdict,
        # but not one Kafka message each.
        for portal_id, signals in self.signals.items():
            self.outbox.add(self.topic_signals, portal_id.encode(), orjson.dumps(signals))
        self.signals.clear()


def _python_event(native) -> Event:
    """The Python core's event for a message the compiled validator accepted."""
    event = validate(native.value, native.key)
    if not isinstance(event, Event):
        # The compiled validator accepts only what the Python one accepts; a
        # disagreement is a bug to fail loudly on, never a message to drop.
        raise RuntimeError(f"validators disagree on a message of call {native.call_id!r}: {event}")
    return event


def _signal(outputs: Outputs) -> tuple | None:
    signal = outputs.signal
    return None if signal is None else (signal.portal_id, signal.call_id, signal.verdict, signal.ts_us)
