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

import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from streams.domain.alerts import AlertRules
from streams.domain.calls import Outputs, advance, check_recording, expire, expiry_due, needs_expiry, recording_due
from streams.domain.dlq import CALL_TOO_LARGE, encode_dlq
from streams.domain.events import Event, Rejection
from streams.domain.outages import HORIZON_US, MAX_VERDICTS, OutageState, PortalSignal, apply_signals, signal_of
from streams.domain.rating import TariffTable
from streams.domain.shared import MAX_CALL_EVENTS
from streams.domain.state import CallState, is_complete, state_from_bytes, state_to_bytes
from streams.domain.validation import validate

EVICT_EVERY = 4096  # messages between two looks for calls to move to disk


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
    max_hot: int = 50_000  # calls of a partition held in memory at most


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
        self._db = rocksdict.Rdict(str(self.path / "calls"), options=self._options)

    def get(self, call_id: str) -> bytes | None:
        return self._db.get(call_id.encode())

    def put(self, call_id: str, blob: bytes) -> None:
        self._db[call_id.encode()] = blob

    def close(self) -> None:
        """Close and delete the store."""
        self._db.close()
        shutil.rmtree(self.path if self._own else self.path / "calls", ignore_errors=True)


class _Call:
    """A call in memory: its state and what it produced since its outputs were last handed over."""

    __slots__ = ("state", "cdr", "alerts", "counted")

    def __init__(self, state: CallState | None) -> None:
        self.state = state
        self.cdr: bytes | None = None
        self.alerts: dict[str, bytes] = {}
        self.counted = state is not None and state.version > 0  # its first CDR was handed over


class PartitionReplay:
    """Feeds one partition's messages, in offset order, through the worker's step."""

    def __init__(self, config: ReplayConfig, partition: int, spill: CallSpill | None = None) -> None:
        self.config = config
        self.partition = partition
        self.hot: OrderedDict[str, _Call] = OrderedDict()  # least recently touched first
        self.spill = spill
        self.unsettled: set[str] = set()  # calls on disk with a timer still pending
        self.outputs = PartitionOutputs()  # handed over by take_outputs
        self.valid: list[tuple[int, int, Event]] = []  # (partition, offset, event) for ``events``
        self.dlq: list[tuple[int, bytes]] = []  # (broker timestamp ms, DLQ record) of rejections
        self.messages = 0
        self.rejected = 0
        self.rekeyed = 0
        self._clock = 0.0  # the worker's clock: broker timestamps, never going back

    def feed(self, offset: int, timestamp_ms: int, key: bytes | None, value: bytes | None) -> None:
        """One message of the partition (offsets ascending)."""
        self.messages += 1
        if timestamp_ms is not None and timestamp_ms >= 0:
            self._clock = max(self._clock, timestamp_ms / 1000)
        result = validate(value, key, timestamp_ms)
        if isinstance(result, Rejection):
            self._reject(result, offset, timestamp_ms, value)
            return
        self.valid.append((self.partition, offset, result))
        if key is None:
            self.rekeyed += 1  # its keyed copy is in the log; that one is folded
            return
        config = self.config
        call = self._call(result.call_id)
        if call.state is not None:
            self._run_timers(call, self._clock)
        new_state, outputs = advance(call.state, [result], config.tariffs, config.rules, self._clock,
                                     self.partition, config.max_events)
        self._take(call, outputs)
        if outputs.refused:
            self._reject(CALL_TOO_LARGE, offset, timestamp_ms, value)
        if new_state is not None:
            call.state = new_state
        self.hot.move_to_end(result.call_id)
        if self.messages % EVICT_EVERY == 0:
            self._evict()

    def take_rows(self) -> tuple[list[tuple[int, int, Event]], list[tuple[int, bytes]]]:
        """The valid events and DLQ records fed since the last call (handed over, then dropped)."""
        valid, dlq = self.valid, self.dlq
        self.valid, self.dlq = [], []
        return valid, dlq

    def take_outputs(self) -> PartitionOutputs:
        """The outputs of calls that left memory since the last call (handed over, then dropped)."""
        out, self.outputs = self.outputs, PartitionOutputs()
        return out

    def finish(self, now: float) -> PartitionOutputs:
        """Run the timers the worker's sweep would have run by ``now`` and the set form of
        ``recording_missing``; hand over the outputs of every call still held."""
        for call_id in sorted(self.unsettled):
            self._call(call_id)
        self.unsettled.clear()
        for call_id, call in list(self.hot.items()):
            state = call.state
            if needs_expiry(state, now, self.config.incomplete_after):
                state = self._expire(call)
            if recording_due(state, 0.0) is not None:
                call.state, outputs = check_recording(state, self.config.tariffs, self.config.rules)
                self._take(call, outputs)
            self._hand_over(call)
        self.hot.clear()
        return self.take_outputs()

    def _call(self, call_id: str) -> _Call:
        call = self.hot.get(call_id)
        if call is None:
            blob = self.spill.get(call_id) if self.spill is not None else None
            call = self.hot[call_id] = _Call(None if blob is None else state_from_bytes(blob))
            self.unsettled.discard(call_id)
        return call

    def _run_timers(self, call: _Call, now: float) -> None:
        """What the worker's sweep did for this call by ``now``: its expiry, its recording check."""
        state = call.state
        if needs_expiry(state, now, self.config.incomplete_after):
            state = self._expire(call)
        due = recording_due(state, self.config.recording_wait)
        if due is not None and due <= now:
            call.state, outputs = check_recording(state, self.config.tariffs, self.config.rules)
            self._take(call, outputs)

    def _evict(self) -> None:
        """Move quiet settled calls, and the quietest beyond ``max_hot``, to disk."""
        if self.spill is None:
            return
        config, now = self.config, self._clock
        over = len(self.hot) - config.max_hot
        for call_id in list(self.hot):  # least recently touched first
            call = self.hot[call_id]
            if over <= 0 and now - call.state.touched_at < config.forget_after:
                break
            self._run_timers(call, now)
            pending = expiry_due(call.state, 0.0) is not None or recording_due(call.state, 0.0) is not None
            if pending:
                if over <= 0:
                    continue  # quiet, but a timer is still to run: it stays until then
                self.unsettled.add(call_id)
            self._hand_over(call)
            self.spill.put(call_id, state_to_bytes(call.state))
            del self.hot[call_id]
            over -= 1

    def _hand_over(self, call: _Call) -> None:
        """The call's last CDR and alerts since the last hand-over, and its verdict, to ``outputs``."""
        out = self.outputs
        if call.cdr is not None:
            out.cdrs[call.state.call_id] = call.cdr
            if not is_complete(call.state):
                out.incomplete += 1
            if not call.counted:
                out.calls += 1
                call.counted = True
        out.alerts.update(call.alerts)
        signal = signal_of(call.state)
        if signal is not None:
            out.signals.append(signal)  # a call handed over twice: its last verdict counts
        call.cdr, call.alerts = None, {}

    def _reject(self, rejection: Rejection, offset: int, timestamp_ms: int, value: bytes | None) -> None:
        self.rejected += 1
        self.dlq.append((timestamp_ms, encode_dlq(rejection, self.config.topic, self.partition, offset,
                                                  value)))

    def _expire(self, call: _Call) -> CallState:
        call.state, outputs = expire(call.state, self.config.tariffs, self.config.rules)
        self._take(call, outputs)
        return call.state

    @staticmethod
    def _take(call: _Call, outputs: Outputs) -> None:
        # Exact-size copies: the bytes orjson returns keep its over-allocated buffer (16 KiB
        # for a CDR, measured), which held for every call of a partition was 20x their size.
        if outputs.cdrs:
            call.cdr = memoryview(outputs.cdrs[-1]).tobytes()
        for _portal, payload in outputs.alerts:
            call.alerts[orjson.loads(payload)["alert_id"]] = memoryview(payload).tobytes()


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
