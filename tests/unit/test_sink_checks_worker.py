"""No CDR or alert the worker makes is ever refused by the sink's contract checks.

The worker's own step (``streams.domain.calls.advance``/``expire``/
``check_recording`` and the portal outage rule, as ``streams.assemble`` drives them) runs over simulator
traffic with every delivery fault and over the property-test scenarios;
every message it emits goes through the sink's decoder with its real key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain import events as E
from streams.domain.alerts import AlertRules
from streams.domain.calls import Outputs, advance, check_recording, expire, needs_expiry, recording_due
from streams.domain.outages import OutageState, apply_signal
from streams.domain.state import is_complete
from streams.domain.validation import validate
from streams.domain.wire import encode_event
from streams.simulator import Faults, Knobs, generate_all
from tests.unit.call_samples import TARIFFS, call_scenarios, deliveries
from tests.unit.strategies import valid_events
from tests.unit.warehouse_samples import T0
from warehouse import duck
from warehouse.decode import RawBatch, decode_json
from warehouse.output_checks import SECONDS_LIMIT

pytestmark = pytest.mark.unit

Message = tuple[str, bytes, bytes]  # table, key, value
RULES = AlertRules(outage_calls=2, outage_window_us=600_000_000)


class WorkerStep:
    """The worker's per-call step and outage rule over events in delivery order."""

    def __init__(self, rules: AlertRules = RULES, incomplete_after: float = 120.0,
                 recording_wait: float = 60.0) -> None:
        self.rules, self.incomplete_after, self.recording_wait = rules, incomplete_after, recording_wait
        self.states: dict[str, Any] = {}
        self.outages: dict[str, OutageState] = {}
        self.clock = 0.0
        self.out: list[Message] = []

    def feed(self, event: E.Event) -> None:
        """One valid event, as the worker folds it (the clock: the newest event time seen)."""
        self.clock = max(self.clock, event.ts_us / 1e6)
        state = self.states.get(event.call_id)
        if state is not None and needs_expiry(state, self.clock, self.incomplete_after):
            state = self._expire(state)
        if state is not None:
            state = self._check_recording(state, self.clock)
        new, outputs = advance(state, [event], TARIFFS, self.rules, self.clock, 0)
        self._take(event.call_id, outputs)
        if new is not None:
            self.states[event.call_id] = new

    def finish(self) -> list[Message]:
        """Expire every call still lacking started or ended (the sweep); every message sent."""
        for state in list(self.states.values()):
            if not is_complete(state) and needs_expiry(state, float("inf"), self.incomplete_after):
                state = self._expire(state)
            self._check_recording(state, float("inf"))
        return self.out

    def _check_recording(self, state, now: float):
        """The recording wait has passed for the call: recording_missing may be raised."""
        due = recording_due(state, self.recording_wait)
        if due is None or due > now:
            return state
        state, outputs = check_recording(state, TARIFFS, self.rules)
        self._take(state.call_id, outputs)
        self.states[state.call_id] = state
        return state

    def _expire(self, state):
        state, outputs = expire(state, TARIFFS, self.rules)
        self._take(state.call_id, outputs)
        self.states[state.call_id] = state
        return state

    def _take(self, call_id: str, outputs: Outputs) -> None:
        self.out += [("cdrs", call_id.encode(), cdr) for cdr in outputs.cdrs]
        self.out += [("alerts", portal.encode(), alert) for portal, alert in outputs.alerts]
        signal = outputs.signal
        if signal is not None:
            state, alerts = apply_signal(self.outages.get(signal.portal_id), signal, self.rules)
            self.outages[signal.portal_id] = state
            self.out += [("alerts", signal.portal_id.encode(), payload) for _, payload in alerts]


_CON = duck.connect()  # one for the module: a connection per hypothesis example would be slow


def _refused(messages: Iterable[Message]) -> list[tuple[dict, dict]]:
    """(message, reject row) of every message the sink's decoder refuses (keys checked)."""
    batches = {"cdrs": RawBatch("cdrs"), "alerts": RawBatch("alerts")}
    for table, key, value in messages:
        batch = batches[table]
        batch.add(0, len(batch), 0, key, value)
    refused = []
    for table, batch in batches.items():
        if not len(batch):
            continue
        rows, rejects = decode_json(_CON, table, batch, check_keys=True)
        for reject in rejects.to_pylist():
            refused.append((orjson.loads(batch.values[reject["kafka_offset"]]), reject))
        assert rows.num_rows + rejects.num_rows == len(batch)
    return refused


def _valid_only(events: list[E.Event]) -> list[E.Event]:
    """The events the worker would fold: those that pass the contract validator on the wire."""
    return [e for e in events if isinstance(validate(encode_event(e), e.call_id.encode()), E.Event)]


def test_every_output_of_simulated_traffic_with_faults_passes():
    knobs = Knobs(outage_rate=0.3, stale_key=0.5, license_errors=0.05, dev_copy=0.05, extranet=0.05)
    messages, _ = generate_all("sink-checks", 1500, 6, T0, Faults(duplicates=0.1, shuffle=0.3,
                                                                  late_recordings=0.2, malformed=0.05), knobs)
    step = WorkerStep()
    for message in messages:
        event = validate(message.value, message.key)
        if isinstance(event, E.Event):
            step.feed(event)
    out = step.finish()
    assert _refused(out) == []
    kinds = Counter(orjson.loads(v)["type"] for t, _, v in out if t == "alerts")
    states = Counter(orjson.loads(v)["detail"].get("state", "open") for t, _, v in out if t == "alerts")
    statuses = Counter(orjson.loads(v)["status"] for t, _, v in out if t == "cdrs")
    # The traffic reached every kind of output the checks have rules for.
    assert set(kinds) >= {"controller_bypassed", "controller_outage", "stale_key", "license_error",
                          "config_not_found", "extranet_call", "recording_missing"}, kinds
    assert set(states) >= {"open", "resolved", "retracted"}, states
    assert set(statuses) >= {"answered", "missed", "busy", "rejected", "failed", "incomplete"}, statuses


@settings(deadline=None, max_examples=100)
@given(st.data())
def test_every_output_of_the_call_scenarios_passes(data: Any) -> None:
    events = _valid_only(data.draw(call_scenarios()))
    if not events:
        return
    step = WorkerStep()
    for event in data.draw(deliveries(events)):
        step.feed(event)
    assert _refused(step.finish()) == []


def _out_of_warehouse_range(doc: dict, reject: dict) -> bool:
    """Sums the warehouse cannot store exactly: recording seconds >= 10^12, bytes beyond BIGINT."""
    if reject["reason"] == "bad_field:recording_s":
        return doc["recording_s"] >= SECONDS_LIMIT
    return reject["reason"] == "bad_field:recording_bytes" and doc["recording_bytes"] > 2**63 - 1


@settings(deadline=None, max_examples=100)
@given(st.lists(valid_events(), min_size=1, max_size=12))
def test_every_output_of_any_valid_events_passes(events: list[E.Event]) -> None:
    """Ids, phones, URLs and times over the whole range the contract allows, as one call."""
    step = WorkerStep()
    for event in events:
        step.feed(event._replace(call_id="call-1"))
    refused = _refused(step.finish())
    assert [(doc, reject) for doc, reject in refused if not _out_of_warehouse_range(doc, reject)] == []
