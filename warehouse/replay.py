"""The live worker's per-call step, replayed over one partition of the event log.

``callstream rebuild`` must produce what the live pipeline produced for the
same events, so it runs the worker's own pure step
(:func:`streams.domain.calls.advance` and :func:`~streams.domain.calls.expire`)
over every message of a partition in offset order, exactly as
``streams.assemble`` does, minus Kafka:

- each message is validated (:func:`~streams.domain.validation.validate`); a
  rejection becomes the DLQ record the worker sends (``encode_dlq``);
- each valid event advances its call's state; the CDR versions, alerts and
  Controller verdict that the worker would send fall out of the same code, so
  the last CDR of a call carries the version the worker's last one carries
  and equals ``build_cdr`` over the call's distinct events (first copy by
  ``event_id`` in offset order wins, as in the worker);
- the worker's wall clock is the one thing a replay does not have. It is
  taken from the messages' broker timestamps (monotonic per partition, as the
  worker's clock is): a call that lacked ``call.started`` or ``call.ended``
  for ``incomplete_after`` seconds between two of its events is expired
  there, and at the end a call quiet for that long before the snapshot is
  emitted as ``incomplete``, as the worker's sweep does. A call still within
  its timeout is in flight: the live worker has sent nothing final for it
  yet, and neither does the replay (a complete call keeps its CDR).

Calls never span partitions (the key is the call id), so a partition is
replayed alone and memory is bounded by one partition's calls. Controller
outages span partitions (they are per portal): :func:`outage_alerts` runs the
portal machine over the verdicts of every call afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

import orjson

from streams.domain.alerts import AlertRules
from streams.domain.calls import Outputs, advance, expire, needs_expiry
from streams.domain.dlq import encode_dlq
from streams.domain.events import Event, Rejection
from streams.domain.outages import HORIZON_US, OutageState, PortalSignal, apply_signals, signal_of
from streams.domain.rating import TariffTable
from streams.domain.state import CallState, is_complete
from streams.domain.validation import validate


@dataclass(frozen=True)
class ReplayConfig:
    """What the live worker was configured with (tariffs: those of the rebuild)."""

    tariffs: TariffTable
    rules: AlertRules
    incomplete_after: float  # seconds, CALLSTREAM_INCOMPLETE_AFTER
    topic: str  # name of the events topic, as DLQ records name it


@dataclass
class PartitionOutputs:
    """The final outputs of one partition's calls (one per call / alert id)."""

    cdrs: dict[str, bytes] = field(default_factory=dict)  # call_id -> its last CDR (JSON)
    alerts: dict[str, bytes] = field(default_factory=dict)  # alert_id -> its last message (JSON)
    signals: list[PortalSignal] = field(default_factory=list)  # each call's final verdict
    incomplete: int = 0  # calls whose last CDR is ``incomplete``


class PartitionReplay:
    """Feeds one partition's messages, in offset order, through the worker's step."""

    def __init__(self, config: ReplayConfig, partition: int) -> None:
        self.config = config
        self.partition = partition
        self.states: dict[str, CallState] = {}
        self.outputs = PartitionOutputs()
        self.valid: list[tuple[int, int, Event]] = []  # (partition, offset, event) for ``events``
        self.dlq: list[tuple[int, bytes]] = []  # (broker timestamp ms, DLQ record) of rejections
        self.messages = 0
        self.rejected = 0
        self._clock = 0.0  # the worker's clock: broker timestamps, never going back

    def feed(self, offset: int, timestamp_ms: int, key: bytes | None, value: bytes | None) -> None:
        """One message of the partition (offsets ascending)."""
        self.messages += 1
        if timestamp_ms >= 0:
            self._clock = max(self._clock, timestamp_ms / 1000)
        result = validate(value, key)
        if isinstance(result, Rejection):
            self.rejected += 1
            self.dlq.append((timestamp_ms, encode_dlq(result, self.config.topic, self.partition,
                                                      offset, value)))
            return
        self.valid.append((self.partition, offset, result))
        config, call_id = self.config, result.call_id
        state = self.states.get(call_id)
        if state is not None and needs_expiry(state, self._clock, config.incomplete_after):
            state = self._expire(state)
        new_state, outputs = advance(state, [result], config.tariffs, config.rules, self._clock,
                                     self.partition)
        self._take(call_id, outputs)
        if new_state is not None:
            self.states[call_id] = new_state

    def take_rows(self) -> tuple[list[tuple[int, int, Event]], list[tuple[int, bytes]]]:
        """The valid events and DLQ records fed since the last call (handed over, then dropped)."""
        valid, dlq = self.valid, self.dlq
        self.valid, self.dlq = [], []
        return valid, dlq

    def finish(self, now: float) -> PartitionOutputs:
        """Expire the calls the worker's sweep would have expired by ``now``; the final outputs."""
        out = self.outputs
        for call_id, state in self.states.items():
            if needs_expiry(state, now, self.config.incomplete_after):
                state = self._expire(state)
            if call_id in out.cdrs and not is_complete(state):
                out.incomplete += 1
            signal = signal_of(state)
            if signal is not None:
                out.signals.append(signal)
        self.states = {}
        return out

    def _expire(self, state: CallState) -> CallState:
        state, outputs = expire(state, self.config.tariffs, self.config.rules)
        self._take(state.call_id, outputs)
        self.states[state.call_id] = state
        return state

    def _take(self, call_id: str, outputs: Outputs) -> None:
        # Exact-size copies: the bytes orjson returns keep its over-allocated buffer (16 KiB
        # for a CDR, measured), which held for every call of a partition was 20x their size.
        if outputs.cdrs:
            self.outputs.cdrs[call_id] = memoryview(outputs.cdrs[-1]).tobytes()
        for _portal, payload in outputs.alerts:
            self.outputs.alerts[orjson.loads(payload)["alert_id"]] = memoryview(payload).tobytes()


def outage_alerts(signals: Iterable[PortalSignal], rules: AlertRules) -> dict[str, bytes]:
    """``controller_outage`` alerts (alert_id -> last message) of the calls' final verdicts.

    ``signals`` must come sorted by portal, then ts. The portal machine runs over them in
    event-time order, in slices of less than its horizon, so no verdict is ever frozen
    before it was seen: the result is the rule applied to the whole set, which is what the
    live machine converges to (outages it retracted after a late verdict are not re-created).
    """
    latest: dict[str, bytes] = {}
    for portal_signals in _by_portal(signals):
        state = OutageState(portal_signals[0].portal_id)
        for chunk in _slices(portal_signals, HORIZON_US // 2):
            state, alerts = apply_signals(state, chunk, rules)
            for alert, payload in alerts:
                latest[alert.alert_id] = payload
    return latest


def _by_portal(signals: Iterable[PortalSignal]) -> Iterator[list[PortalSignal]]:
    group: list[PortalSignal] = []
    for signal in signals:
        if group and signal.portal_id != group[0].portal_id:
            yield group
            group = []
        group.append(signal)
    if group:
        yield group


def _slices(signals: list[PortalSignal], span_us: int) -> Iterator[list[PortalSignal]]:
    start = 0
    for i, signal in enumerate(signals):
        if signal.ts_us - signals[start].ts_us >= span_us:
            yield signals[start:i]
            start = i
    yield signals[start:]
