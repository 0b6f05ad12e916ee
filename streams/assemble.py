"""One batch of ``call-events`` (and sweep commands) through the pure core.

Contract v1.1 in the batch: an event's ``ts`` is judged against its message's
timestamp; a valid event without a key is not folded but re-published on the
events topic under its ``call_id`` (it then arrives in its call's partition,
is folded there, and a call is never split across workers); events a call has
no room for go to the DLQ as ``call_too_large``; every record sent is checked
against the size the broker accepts (:mod:`streams.output_guard`).

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

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
from faust.types import EventT

from streams.app import Worker
from streams.call_store import CallStore, Summary
from streams.domain.calls import (
    Outputs,
    advance,
    check_recording,
    expire,
    expiry_due,
    needs_expiry,
    recording_due,
    settled,
)
from streams.domain.dlq import CALL_TOO_LARGE, encode_dlq
from streams.domain.events import Event, Rejection
from streams.domain.state import CallState, state_from_bytes
from streams.domain.validation import validate
from streams.native import Guard, native_validate
from streams.outbox import Outbox
from streams.output_guard import OutputGuard, withheld_record

log = logging.getLogger("callstream.worker")
# A portal's signals of one batch go out in messages of at most this many verdicts
# (~100 bytes each), far below the internal topics' message limit.
SIGNALS_PER_MESSAGE = 4096


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
    summary: Summary | None = None  # the compiled core's reading of ``blob`` for the schedule
    events: list = field(default_factory=list)  # Event or NativeEvent, in arrival order
    records: list = field(default_factory=list)  # the Kafka record of each event


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
        self.guard_output = OutputGuard(self.outbox, settings.topic_dlq)
        self.signals: dict[str, list] = {}
        # True while a batch is in hand: waiting on the broker's acknowledgements is not a stall.
        self.busy = False
        self.counts = {"events": 0, "rejected": 0, "cdrs": 0, "alerts": 0, "rekeyed": 0}

    async def process(self, batch: Sequence[EventT]) -> None:
        """Steps 1-3 of the module docstring for one batch; ``busy`` while it runs."""
        self.busy = True
        try:
            await self._process(batch)
        finally:
            self.busy = False

    async def _process(self, batch: Sequence[EventT]) -> None:
        now = time.time()
        pending: dict[str, _Pending] = {}
        commands: list[tuple[EventT, dict]] = []
        for kafka_event in batch:  # each: the records of one partition from one fetch
            if kafka_event.message.topic == self.commands_topic:
                commands.extend((kafka_event, command) for command in map(_command, kafka_event.value)
                                if command is not None)
                continue
            self._decode(kafka_event, pending)
        for call_id, item in pending.items():
            self._advance(call_id, item, now)
        archive = self._run_commands(commands, pending, now)
        self._queue_signals()
        await self.outbox.flush(self.worker.app.producer)
        for item in pending.values():
            if not item.dirty:
                continue
            if item.state is not None:
                self.store.save(item.anchor, item.state)
            else:
                self.store.save_blob(item.anchor, item.blob, item.summary)
        await self.store.flush_changelog(self.worker.app.producer)
        if archive:
            await self._archive(archive)

    def _decode(self, kafka_event: EventT, pending: dict[str, _Pending]) -> None:
        """Validate one fetch's records into the batch's calls; rejections go to the DLQ."""
        records = kafka_event.value
        self.counts["events"] += len(records)
        fast, guard = self.native_validate, self.guard
        for record in records:
            timestamp = record.timestamp
            event = guard(fast, record.value, record.key, timestamp) if fast is not None else None
            native = event is not None
            if not native:
                event = validate(record.value, record.key, timestamp)
                if isinstance(event, Rejection):
                    self._reject(record, event)
                    continue
            if record.key is None:
                self._rekey(record, event.call_id)
                continue
            item = pending.get(event.call_id)
            if item is None:
                blob, from_archive = self.store.load_blob(kafka_event, event.call_id)
                item = pending[event.call_id] = _Pending(kafka_event, blob, from_archive)
            item.anchor = kafka_event
            item.events.append(event)
            item.records.append(record)
            if not native:
                item.native = False

    def _reject(self, record, rejection: Rejection) -> None:
        self.counts["rejected"] += 1
        self.outbox.add(self.topic_dlq, record.key, encode_dlq(
            rejection, record.topic, record.partition, record.offset, record.value))

    def _rekey(self, record, call_id: str) -> None:
        """Contract v1.1: a valid event without a key goes back on the events topic under its
        call_id, keeping its timestamp, and only that copy is folded (in its call's partition).
        A crash re-publishes it again: the copies share an event_id, so the call folds one."""
        self.counts["rekeyed"] += 1
        stamp = record.timestamp if record.timestamp is not None and record.timestamp >= 0 else None
        self.outbox.add(record.topic, call_id.encode(), record.value, timestamp_ms=stamp)

    def _advance(self, call_id: str, item: _Pending, now: float) -> None:
        """One call's step: the compiled core when it takes it, else the Python core."""
        partition = item.anchor.message.partition
        if item.native and self.native is not None:
            step = self.guard(self.native.advance, item.blob, item.events, now, partition)
            if step is not None:
                if step.state is not None:
                    item.blob, item.dirty = step.state, True
                    item.summary = Summary(call_id, partition, step.touched_at, step.version, step.done,
                                           step.recording_since)
                self._send(call_id, step.cdrs, step.alerts, step.signal)
                self._refuse(item, step.refused)
                return
        events = [event if type(event) is Event else _python_event(event, record)
                  for event, record in zip(item.events, item.records)]
        state, outputs = advance(self._state(item, call_id), events, self.worker.tariffs, self.worker.rules,
                                 now, partition, self.worker.settings.max_call_events)
        if state is not None:
            item.state, item.dirty = state, True
        self._send(call_id, outputs.cdrs, outputs.alerts, _signal(outputs))
        self._refuse(item, outputs.refused)

    def _refuse(self, item: _Pending, positions: list[int]) -> None:
        """The events a call had no room for: to the DLQ as call_too_large."""
        for position in positions:
            self._reject(item.records[position], CALL_TOO_LARGE)

    def _state(self, item: _Pending, call_id: str) -> CallState | None:
        if item.state is None and item.blob is not None:
            try:
                item.state = state_from_bytes(item.blob)
            except ValueError as exc:
                self._unreadable(item, call_id.encode(), exc)
        return item.state

    def _unreadable(self, item: _Pending, call_id: bytes, exc: ValueError) -> None:
        """A stored state no core can read (a changelog written by hand, or by a version
        that no longer exists): the call starts afresh from its next events rather than
        stopping the partition for good; the bytes go to the DLQ as evidence, and a
        rebuild from the event log restores the call."""
        log.error("unreadable state of call %r: %s; starting it afresh", call_id, exc)
        self.outbox.add(self.topic_dlq, call_id, withheld_record(
            "call state", call_id, item.blob, 0, reason="state_unreadable", error=str(exc)[:200]))
        item.blob = None
        item.native = False  # the compiled core would decline the same bytes

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
            state = self._state(item, call_id)
            if state is None or item.from_archive or state.touched_at != command["touched_at"]:
                continue  # gone, or an event arrived after the command was issued
            kind = command["kind"]
            if kind == "expire" and needs_expiry(state, now, settings.incomplete_after):
                item.state, outputs = expire(state, self.worker.tariffs, self.worker.rules)
                item.dirty = True
                self._send(call_id, outputs.cdrs, outputs.alerts, _signal(outputs))
            elif kind == "recording" and _passed(recording_due(state, settings.recording_wait), now):
                item.state, outputs = check_recording(state, self.worker.tariffs, self.worker.rules)
                item.dirty = True
                self._send(call_id, outputs.cdrs, outputs.alerts, _signal(outputs))
            elif kind == "evict" and not item.dirty:
                # Over CALLSTREAM_MAX_HOT_CALLS: settle the call now (what its timers would
                # do later), then archive it; a later event revives it from the archive.
                state = self._settle(item, state)
                archive.append((item.anchor, state))
            elif command["kind"] == "forget" and settled(state) and not item.dirty \
                    and now - state.touched_at >= settings.forget_after:
                archive.append((item.anchor, state))
        return archive

    def _settle(self, item: _Pending, state: CallState) -> CallState:
        """The evicted call's pending timers, run early: its incomplete CDR, its recording check."""
        rules, tariffs = self.worker.rules, self.worker.tariffs
        if expiry_due(state, 0.0) is not None:
            state, outputs = expire(state, tariffs, rules)
            self._send(state.call_id, outputs.cdrs, outputs.alerts, _signal(outputs))
        if recording_due(state, 0.0) is not None:
            state, outputs = check_recording(state, tariffs, rules)
            self._send(state.call_id, outputs.cdrs, outputs.alerts, _signal(outputs))
        return state

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
            self.guard_output.add(self.topic_cdrs, key, cdr)
        for portal_id, alert in alerts:
            self.guard_output.add(self.topic_alerts, portal_id.encode(), alert)
        if signal is not None:
            portal_id, call, verdict, ts_us = signal
            self.signals.setdefault(portal_id, []).append([call, verdict, ts_us])
        self.counts["cdrs"] += len(cdrs)
        self.counts["alerts"] += len(alerts)

    def _queue_signals(self) -> None:
        # One message per portal per batch: the outage rule needs every verdict,
        # but not one Kafka message each.
        for portal_id, signals in self.signals.items():
            for at in range(0, len(signals), SIGNALS_PER_MESSAGE):
                self.outbox.add(self.topic_signals, portal_id.encode(),
                                orjson.dumps(signals[at:at + SIGNALS_PER_MESSAGE]))
        self.signals.clear()


def _python_event(native, record) -> Event:
    """The Python core's event for a message the compiled validator accepted."""
    event = validate(native.value, native.key, record.timestamp)
    if not isinstance(event, Event):
        # The compiled validator accepts only what the Python one accepts; a
        # disagreement is a bug to fail loudly on, never a message to drop.
        raise RuntimeError(f"validators disagree on a message of call {native.call_id!r}: {event}")
    return event


def _command(record) -> dict | None:
    """A sweep command; anything else on the commands topic (only workers write it) is
    logged and skipped, never a reason to stop."""
    try:
        command = orjson.loads(record.value)
        if (type(command) is dict and type(command.get("call_id")) is str
                and command.get("kind") in ("expire", "forget", "recording", "evict")
                and type(command.get("touched_at")) in (int, float)):
            return command
    except (orjson.JSONDecodeError, TypeError):
        pass
    log.warning("skipped a malformed command at %s[%s]@%s", record.topic, record.partition, record.offset)
    return None


def _passed(due: float | None, now: float) -> bool:
    return due is not None and due <= now


def _signal(outputs: Outputs) -> tuple | None:
    signal = outputs.signal
    return None if signal is None else (signal.portal_id, signal.call_id, signal.verdict, signal.ts_us)
