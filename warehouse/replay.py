"""The live worker's per-call step, replayed over one partition of the event log.

``callstream rebuild`` must produce what the live pipeline produced for the
same events, so it runs the worker's own pure step
(:func:`streams.domain.calls.advance` and :func:`~streams.domain.calls.expire`)
over every message of a partition in offset order, exactly as
``streams.assemble`` does, minus Kafka:

- each message is validated (:func:`~streams.domain.validation.validate`,
  against its broker timestamp as contract v1.1 asks); a rejection becomes
  the DLQ record the worker sends (``encode_dlq``), and so does an event the
  call has no room for (``call_too_large``);
- a valid event without a key is kept as an event row but not folded: the
  worker re-published it under its call_id, and that copy is in the log;
- each valid event advances its call's state; the CDR versions, alerts and
  Controller verdict that the worker would send fall out of the same code, so
  the last CDR of a call carries the version the worker's last one carries
  and equals ``build_cdr`` over the call's distinct events (first copy by
  ``event_id`` in offset order wins, as in the worker);
- the worker's wall clock is the one thing a replay does not have. It is
  taken from the messages' broker timestamps (monotonic per partition, as the
  worker's clock is): a call that lacked ``call.started`` or ``call.ended``
  for ``incomplete_after`` seconds between two of its events is expired
  there, a recording check that fell due is made there, and at the end a call
  quiet for that long before the snapshot is emitted as ``incomplete``, as the
  worker's sweep does. A call still within its timeout is in flight: the live
  worker has sent nothing final for it yet, and neither does the replay (a
  complete call keeps its CDR). ``recording_missing`` takes the set form at
  the end (contract v1.1): every call whose final events lack a recording
  raises it.

Memory is bounded whatever the log holds: calls quiet for ``forget_after``
(broker clock), and the quietest ones beyond ``max_hot``, leave memory for an
on-disk store (:class:`CallSpill`, RocksDB) after their last CDR, alerts and
verdict were handed out (:meth:`PartitionReplay.take_outputs`); a later
event of such a call brings its state back, and its next outputs supersede
the ones handed out (the caller numbers them in order). Calls never span
partitions (the key is the call id), so a partition is replayed alone.
Controller outages span partitions (they are per portal):
:func:`outage_alerts` runs the portal machine over every call's final
verdict afterwards.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.domain.alerts import AlertRules
from streams.domain.calls import advance, check_recording
from streams.domain.dlq import CALL_TOO_LARGE, encode_dlq
from streams.domain.events import Event, Rejection
from streams.domain.outages import HORIZON_US, MAX_VERDICTS, OutageState, PortalSignal, apply_signals
from streams.domain.rating import TariffTable
from streams.domain.shared import MAX_CALL_EVENTS
from streams.domain.validation import validate
from warehouse.replay_calls import Call

log = logging.getLogger("callstream.rebuild")
CHUNK_MESSAGES = 4096  # offsets [k*N, (k+1)*N) of a partition are folded together
INCOMPLETE = b'"status":"incomplete"'


@dataclass(frozen=True)
class ReplayConfig:
    """What the live worker was configured with (tariffs: those of the rebuild)."""

    tariffs: TariffTable
    rules: AlertRules
    incomplete_after: float  # seconds, CALLSTREAM_INCOMPLETE_AFTER
    topic: str  # name of the events topic, as DLQ records name it
    recording_wait: float = 3600.0  # CALLSTREAM_RECORDING_WAIT
    max_events: int = MAX_CALL_EVENTS  # CALLSTREAM_MAX_CALL_EVENTS
    forget_after: float = 3600.0  # CALLSTREAM_FORGET_AFTER: quiet settled calls go to disk
    max_hot: int = 20_000  # calls of a partition held in memory at most (~3 KiB each)
    native: str = "auto"  # CALLSTREAM_NATIVE: the compiled core when installed (auto), required (on), never (off)
    chunk: int = CHUNK_MESSAGES  # messages (an aligned offset range) folded together


@dataclass
class PartitionOutputs:
    """Outputs of calls handed over: each call's last CDR, alerts and final verdict."""

    cdrs: dict[str, bytes] = field(default_factory=dict)  # call_id -> its last CDR (JSON)
    alerts: dict[str, bytes] = field(default_factory=dict)  # alert_id -> its last message (JSON)
    signals: list[PortalSignal] = field(default_factory=list)  # each call's final verdict
    incomplete: int = 0  # calls whose last CDR is ``incomplete``
    calls: int = 0  # calls whose first CDR is among ``cdrs``


class CallSpill:
    """Call states that left memory, on disk (RocksDB, raw bytes) in a private directory."""

    def __init__(self, directory: Path | None = None) -> None:
        import rocksdict

        self._own = directory is None
        self.path = Path(tempfile.mkdtemp(prefix="callstream-replay-")) if directory is None else directory
        self._options = rocksdict.Options(raw_mode=True)
        # Two 16 MiB memtables at most (RocksDB's default is 64 MiB each): at 10M events a
        # replay process spilled enough calls for the default to show in its peak RSS.
        self._options.set_write_buffer_size(16 * 2**20)
        self._options.set_max_write_buffer_number(2)
        self._db = rocksdict.Rdict(str(self.path / "calls"), options=self._options)

    def get(self, call_id: str) -> bytes | None:
        return self._db.get(call_id.encode())

    def put(self, call_id: str, blob: bytes) -> None:
        self._db[call_id.encode()] = blob

    def close(self) -> None:
        """Close and delete the store."""
        self._db.close()
        shutil.rmtree(self.path if self._own else self.path / "calls", ignore_errors=True)


class NativeCore:
    """The compiled core (``callstream_native``) for one replay; a panic there gives None,
    and the Python core takes that input (as the worker's ``streams.native.Guard`` does)."""

    def __init__(self, config: ReplayConfig) -> None:
        import callstream_native

        rows = [(row.line, row.direction, row.prefix, row.region, format(row.rate_per_min, "f"),
                 format(row.connect_fee, "f"), row.increment_s, row.min_s, row.currency,
                 row.valid_from_us) for row in config.tariffs.rows]
        self._core = callstream_native.Core(rows, config.rules.stale_key_after_us, config.max_events)
        # validate_row keeps the message's events row too (events_rows.py): no second parse. A
        # build older than it gives events without rows: the Python core writes those rows.
        self._validate = getattr(callstream_native, "validate_row", callstream_native.validate)
        self._panic = callstream_native.PanicException

    @classmethod
    def of(cls, config: ReplayConfig) -> NativeCore | None:
        """The compiled core, or None for the Python core (``native`` off, or not installed)."""
        if config.native == "off":
            return None
        try:
            return cls(config)
        except ImportError:
            if config.native == "on":
                raise
            return None

    def validate(self, value: Any, key: Any, timestamp_ms: int | None) -> Any:
        # _guarded written out: called once per message, one Python frame fewer.
        try:
            return self._validate(value, key, timestamp_ms)
        except self._panic:
            log.error("the compiled core panicked; the Python core takes this input", exc_info=True)
            return None

    def advance(self, blob: bytes | None, events: list, now: float, partition: int) -> Any:
        return self._guarded(self._core.advance, blob, events, now, partition)

    def _guarded(self, function: Callable[..., Any], *args: Any) -> Any:
        try:
            return function(*args)
        except self._panic:
            log.error("the compiled core panicked; the Python core takes this input", exc_info=True)
            return None


class PartitionReplay:
    """Feeds one partition's messages, in offset order, through the worker's step.

    Messages are folded a chunk at a time (the aligned offset range
    ``[k * config.chunk, (k + 1) * config.chunk)``, so two replays of a log fold alike):
    see "The fast path" in warehouse/DESIGN.md.
    """

    def __init__(self, config: ReplayConfig, partition: int, spill: CallSpill | None = None) -> None:
        self.config = config
        self.partition = partition
        self.hot: OrderedDict[str, Call] = OrderedDict()  # least recently touched first
        self.spill = spill
        self.unsettled: set[str] = set()  # calls on disk with a timer still pending
        self.outputs = PartitionOutputs()  # handed over by take_outputs
        # (partition, offset, event) for ``events``: an Event, or the compiled core's NativeEvent
        self.valid: list[tuple[int, int, Any]] = []
        self.dlq: list[tuple[int, int, bytes]] = []  # (offset, broker timestamp ms, DLQ record)
        self._counts = [0, 0, 0]  # messages, rejected, rekeyed (of the chunks folded)
        self.native = NativeCore.of(config)
        self._min_timer = min(config.incomplete_after, config.recording_wait)
        self._clock = 0.0  # the worker's clock: broker timestamps, never going back
        self._pending: list[tuple] = []  # messages of the chunk being read
        self._chunk_index: int | None = None

    def feed(self, offset: int, timestamp_ms: int, key: bytes | None, value: bytes | None) -> None:
        """One message of the partition (offsets ascending); folded once its chunk is complete."""
        index = offset // self.config.chunk
        if index != self._chunk_index and self._pending:
            self._fold_chunk()
        self._chunk_index = index
        self._pending.append((offset, timestamp_ms, key, value))

    def feed_many(self, records: list[tuple]) -> None:
        """``feed`` of each (offset, timestamp ms, key, value) of ``records``, in order."""
        chunk, pending = self.config.chunk, self._pending
        for record in records:
            index = record[0] // chunk
            if index != self._chunk_index:
                if pending:
                    self._fold_chunk()
                    pending = self._pending
                self._chunk_index = index
            pending.append(record)

    @property
    def messages(self) -> int:
        """Messages fed (reading a count folds the chunk read so far)."""
        self.flush()
        return self._counts[0]

    @property
    def rejected(self) -> int:
        """Messages sent to the DLQ (refused, or beyond a call's room)."""
        self.flush()
        return self._counts[1]

    @property
    def rekeyed(self) -> int:
        """Valid events without a key (folded through the copy the worker re-published)."""
        self.flush()
        return self._counts[2]

    def flush(self) -> None:
        """Fold the messages of the chunk read so far (the end of the partition's range)."""
        if self._pending:
            self._fold_chunk()

    def take_rows(self) -> tuple[list[tuple[int, int, Any]], list[tuple[int, bytes]]]:
        """The valid events and DLQ records fed so far (handed over, then dropped)."""
        self.flush()
        return self.take_folded_rows()

    def take_folded_rows(self) -> tuple[list[tuple[int, int, Any]], list[tuple[int, bytes]]]:
        """The valid events and DLQ records of the chunks folded so far."""
        valid, dlq = self.valid, self.dlq
        self.valid, self.dlq = [], []
        dlq.sort(key=lambda item: item[0])  # source offset order
        return valid, [(timestamp_ms, record) for _, timestamp_ms, record in dlq]

    def take_outputs(self) -> PartitionOutputs:
        """The outputs of calls that left memory since the last call (handed over, then dropped)."""
        out, self.outputs = self.outputs, PartitionOutputs()
        return out

    def finish(self, now: float) -> PartitionOutputs:
        """Run the timers the worker's sweep would have run by ``now`` and the set form of
        ``recording_missing``; hand over the outputs of every call still held."""
        self.flush()
        for call_id in sorted(self.unsettled):
            self._call(call_id)
        self.unsettled.clear()
        config = self.config
        for call_id, call in list(self.hot.items()):
            call.run_timers(now, config)
            if call.recording_since is not None:
                state, outputs = check_recording(call.python_state(), config.tariffs, config.rules)
                call.set_state(state)
                call.take_outputs(outputs)
            self._hand_over(call_id, call)
        self.hot.clear()
        return self.take_outputs()

    def _fold_chunk(self) -> None:
        records, self._pending = self._pending, []
        native, counts, partition, valid = self.native, self._counts, self.partition, self.valid
        groups: dict[str, list[tuple]] = {}
        clock = self._clock
        for record in records:
            offset, timestamp_ms, key, value = record
            if timestamp_ms is not None and timestamp_ms >= 0 and timestamp_ms / 1000 > clock:
                clock = self._clock = timestamp_ms / 1000
            event = native.validate(value, key, timestamp_ms) if native is not None else None
            if event is None:
                event = validate(value, key, timestamp_ms)
                if isinstance(event, Rejection):
                    self._reject(event, record)
                    continue
            valid.append((partition, offset, event))
            if key is None:
                counts[2] += 1  # its keyed copy is in the log; that one is folded
                continue
            group = groups.get(event.call_id)
            if group is None:
                groups[event.call_id] = [(event, clock, record)]
            else:
                group.append((event, clock, record))
        counts[0] += len(records)
        for call_id, group in groups.items():
            self._fold_call(call_id, group)
        self._evict()

    def _fold_call(self, call_id: str, group: list[tuple]) -> None:
        """One call's events of the chunk: in one step of the compiled core when that is what
        folding them one by one at their own clocks gives, else one by one."""
        config, native = self.config, self.native
        call = self._call(call_id)
        first, last = group[0][1], group[-1][1]
        if (native is not None and last - first < self._min_timer
                and not call.fires_between(first, last, config.incomplete_after, config.recording_wait)
                and all(type(item[0]) is not Event for item in group)):
            call.run_timers(first, config)
            step = native.advance(call.state_bytes(), [item[0] for item in group], last, self.partition)
            if step is not None:
                self._apply_step(call, step, group)
                self.hot.move_to_end(call_id)
                return
        for item in group:
            call.run_timers(item[1], config)
            self._advance_one(call, item)
        self.hot.move_to_end(call_id)

    def _advance_one(self, call: Call, item: tuple) -> None:
        event, clock, record = item
        config = self.config
        if self.native is not None and type(event) is not Event:
            step = self.native.advance(call.state_bytes(), [event], clock, self.partition)
            if step is not None:
                self._apply_step(call, step, [item])
                return
            event = _python_event(record)
        state, outputs = advance(call.python_state(), [event], config.tariffs, config.rules, clock,
                                 self.partition, config.max_events)
        call.take_outputs(outputs)
        if outputs.refused:
            self._reject(CALL_TOO_LARGE, record)
        if state is not None:
            call.set_state(state)

    def _apply_step(self, call: Call, step: Any, group: list[tuple]) -> None:
        call.take(step.cdrs, step.alerts, step.signal)
        for position in step.refused:
            self._reject(CALL_TOO_LARGE, group[position][2])
        if step.state is not None:
            call.set_step(step)

    def _call(self, call_id: str) -> Call:
        call = self.hot.get(call_id)
        if call is None:
            blob = self.spill.get(call_id) if self.spill is not None else None
            call = self.hot[call_id] = Call(blob)
            self.unsettled.discard(call_id)
        return call

    def _evict(self) -> None:
        """Move quiet settled calls, and the quietest beyond ``max_hot``, to disk."""
        if self.spill is None:
            return
        config, now = self.config, self._clock
        over = len(self.hot) - config.max_hot
        for call_id in list(self.hot):  # least recently touched first
            call = self.hot[call_id]
            if over <= 0 and now - call.touched_at < config.forget_after:
                break
            call.run_timers(now, config)
            if not call.done or call.recording_since is not None:
                if over <= 0:
                    continue  # quiet, but a timer is still to run: it stays until then
                self.unsettled.add(call_id)
            self._hand_over(call_id, call)
            blob = call.state_bytes()
            if blob is not None:
                self.spill.put(call_id, blob)
            del self.hot[call_id]
            over -= 1

    def _hand_over(self, call_id: str, call: Call) -> None:
        """The call's last CDR and alerts since the last hand-over, and its verdict, to ``outputs``."""
        out = self.outputs
        if call.cdr is not None:
            out.cdrs[call_id] = call.cdr
            if INCOMPLETE in call.cdr:
                out.incomplete += 1
            if not call.counted:
                out.calls += 1
                call.counted = True
        out.alerts.update(call.alerts)
        signal = call.verdict()
        if signal is not None:
            out.signals.append(signal)  # a call handed over twice: its last verdict counts
        call.cdr, call.alerts = None, {}

    def _reject(self, rejection: Rejection, record: tuple) -> None:
        offset, timestamp_ms, _key, value = record
        self._counts[1] += 1
        self.dlq.append((offset, timestamp_ms, encode_dlq(rejection, self.config.topic, self.partition,
                                                          offset, value)))


def _python_event(record: tuple) -> Event:
    """The Python core's event for a message the compiled validator accepted."""
    _offset, timestamp_ms, key, value = record
    event = validate(value, key, timestamp_ms)
    if not isinstance(event, Event):
        raise RuntimeError(f"validators disagree on a message at offset {_offset}: {event}")
    return event


def outage_alerts(signals: Iterable[PortalSignal], rules: AlertRules) -> dict[str, bytes]:
    """``controller_outage`` alerts (alert_id -> last message) of the calls' final verdicts.

    ``signals`` must come sorted by portal, then ts. The portal machine runs over them in
    event-time order, in slices of less than its horizon, so no verdict is ever frozen
    before it was seen: the result is the rule applied to the whole set, which is what the
    live machine converges to (outages it retracted after a late verdict are not re-created).
    Slices are read as they come, so memory holds one slice, whatever a portal's size.
    """
    latest: dict[str, bytes] = {}
    state: OutageState | None = None
    for chunk in _slices(signals, HORIZON_US // 2):
        if state is None or state.portal_id != chunk[0].portal_id:
            state = OutageState(chunk[0].portal_id)
        state, alerts = apply_signals(state, chunk, rules)
        for alert, payload in alerts:
            latest[alert.alert_id] = payload
    return latest


def _slices(signals: Iterable[PortalSignal], span_us: int) -> Iterator[list[PortalSignal]]:
    """Runs of one portal's signals spanning less than ``span_us`` each (and at most the
    machine's verdict bound, so that none is frozen before the slice is applied)."""
    chunk: list[PortalSignal] = []
    for signal in signals:
        if chunk and (signal.portal_id != chunk[0].portal_id or signal.ts_us - chunk[0].ts_us >= span_us
                      or len(chunk) >= MAX_VERDICTS // 2):
            yield chunk
            chunk = []
        chunk.append(signal)
    if chunk:
        yield chunk
