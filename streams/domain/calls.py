"""One call's step in the worker: fold events in, decide what to emit.

Pure functions over a :class:`CallState`: the worker supplies the state from
its table, the events of one batch in arrival order and its wall clock; it
gets back the new state and the messages to send. Delivery rules (contract):
- a CDR is emitted once both ``call.started`` and ``call.ended`` are seen, and
  each later event that changes the CDR (a new distinct event) raises its
  version by one; a step emits only the last version it reaches (contract
  v1.1: at most one CDR version per batch), so a hot call costs one CDR per
  batch, not one per event, and the version of a given set of events does not
  depend on how the events were batched;
- a call's distinct events beyond its first ``max_events`` (in partition
  order) are refused (``Outputs.refused``: the worker sends them to the DLQ as
  ``call_too_large``) and change nothing;
- a call lacking either by its incomplete-timeout (worker clock since its last
  event) is emitted as ``incomplete``; any later event emits the next version;
- an alert is emitted when it appears or its JSON changes (digests in state),
  and withdrawn — re-sent with ``detail.state`` ``retracted`` — when the call's
  events stop raising it (a later-arriving ``call.started`` or ``call.ended``
  that wins changes the facts), so the live alerts are those of the set;
- the call's Controller verdict goes to the portal's outage rule as a signal
  whenever it changes;
- ``recording_missing`` (contract v1.1) needs the worker's clock: the state
  remembers when ``call.ended`` was first seen, and once the recording wait
  has passed the worker marks the call checked (:func:`check_recording`);
  from then on the alert follows the set of events like any other.
Versions are deterministic: per call, events are processed in partition
order, so re-processing after a crash re-emits the same (version, CDR) pairs.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.domain.alerts import Alert, AlertRules, alert_to_json, call_alerts, digest, lacks_recording
from streams.domain.cdr import Cdr, cdr_from_state
from streams.domain.cdr_json import cdr_to_json
from streams.domain.events import Event
from streams.domain.outages import PortalSignal, signal_of
from streams.domain.rating import TariffTable
from streams.domain.shared import (
    ENDED_SEEN_KEY,
    EXPIRED_KEY,
    MAX_CALL_EVENTS,
    RECORDING_CHECKED_KEY,
    RETRACTED_KEY,
    SIGNAL_KEY,
)
from streams.domain.state import CallState, fold, is_complete, updated

RETRACTED = RETRACTED_KEY  # what emitted holds for an alert withdrawn



@dataclass
class Outputs:
    """Messages one step produces: (key, value) pairs per topic, plus a portal signal.

    ``refused`` holds the positions (in the step's ``events``) of events the call
    had no room for: the worker sends them to the DLQ as ``call_too_large``.
    """

    cdrs: list[bytes] = field(default_factory=list)
    alerts: list[tuple[str, bytes]] = field(default_factory=list)  # (portal_id, alert JSON)
    signal: PortalSignal | None = None
    refused: list[int] = field(default_factory=list)


def advance(state: CallState | None, events: Iterable[Event], tariffs: TariffTable,
            rules: AlertRules, now: float, partition: int,
            max_events: int = MAX_CALL_EVENTS) -> tuple[CallState | None, Outputs]:
    """Fold a batch of one call's events; the state is None when nothing changed."""
    outputs = Outputs()
    changed_any = False
    version = state.version if state is not None else 0
    for position, event in enumerate(events):
        if state is not None and len(state.event_ids) >= max_events:
            if not _seen(state, event.event_id):
                outputs.refused.append(position)
            continue
        state, changed = fold(state, event)
        if not changed:
            continue
        changed_any = True
        if state.version > 0 or is_complete(state):
            state = updated(state, {"version": state.version + 1})
        if event.type == "call.ended" and ENDED_SEEN_KEY not in state.emitted:
            state = updated(state, {"emitted": {**state.emitted, ENDED_SEEN_KEY: now}})
    if state is None or not changed_any:
        return None, outputs
    last_cdr: Cdr | None = None
    if state.version > version:
        last_cdr = cdr_from_state(state, tariffs, incomplete=not is_complete(state))
        outputs.cdrs.append(cdr_to_json(last_cdr, state.version))
    state = updated(state, {"touched_at": now, "partition": partition})
    return _with_alerts(state, last_cdr, rules, outputs), outputs


def _seen(state: CallState, event_id: str) -> bool:
    ids = state.event_ids
    at = bisect_left(ids, event_id)
    return at < len(ids) and ids[at] == event_id


def recording_due(state: CallState, wait_s: float) -> float | None:
    """Worker-clock time at which the call's missing recording is to be checked, or None."""
    seen = state.emitted.get(ENDED_SEEN_KEY)
    if seen is None or state.emitted.get(RECORDING_CHECKED_KEY) or not lacks_recording(state):
        return None
    return seen + wait_s


def check_recording(state: CallState, tariffs: TariffTable,
                    rules: AlertRules) -> tuple[CallState, Outputs]:
    """The recording wait has passed: from now on a call without recording raises
    ``recording_missing`` (and a recording that arrives later retracts it)."""
    outputs = Outputs()
    state = updated(state, {"emitted": {**state.emitted, RECORDING_CHECKED_KEY: True}})
    cdr = cdr_from_state(state, tariffs, incomplete=not is_complete(state)) if state.version else None
    return _with_alerts(state, cdr, rules, outputs), outputs


def expire(state: CallState, tariffs: TariffTable, rules: AlertRules) -> tuple[CallState, Outputs]:
    """Emit the ``incomplete`` CDR of a call that timed out (once per quiet period)."""
    outputs = Outputs()
    cdr = cdr_from_state(state, tariffs, incomplete=True)
    state = updated(state, {"version": state.version + 1,
                            "emitted": {**state.emitted, EXPIRED_KEY: state.touched_at}})
    outputs.cdrs.append(cdr_to_json(cdr, state.version))
    return _with_alerts(state, cdr, rules, outputs), outputs


def needs_expiry(state: CallState, now: float, incomplete_after: float) -> bool:
    """Started or ended is still missing after the timeout, and not yet emitted for it."""
    return (not is_complete(state) and now - state.touched_at >= incomplete_after
            and state.emitted.get(EXPIRED_KEY) != state.touched_at)


def expiry_due(state: CallState, incomplete_after: float) -> float | None:
    """Worker-clock time at which the call times out, or None when it never will."""
    if is_complete(state) or state.emitted.get(EXPIRED_KEY) == state.touched_at:
        return None
    return state.touched_at + incomplete_after


def settled(state: CallState) -> bool:
    """A CDR (complete or incomplete) was emitted and no recording check is pending:
    only late events can change it now."""
    return state.version > 0 and expiry_due(state, 0.0) is None and recording_due(state, 0.0) is None


def _with_alerts(state: CallState, cdr: Cdr | None, rules: AlertRules,
                 outputs: Outputs) -> CallState:
    emitted = dict(state.emitted)
    live = set()
    for alert in call_alerts(state, cdr, rules):
        live.add(alert.alert_id)
        payload = alert_to_json(alert)
        fingerprint = digest(payload)
        if emitted.get(alert.alert_id) != fingerprint:
            emitted[alert.alert_id] = fingerprint
            outputs.alerts.append((alert.portal_id, payload))
    for alert_id, fingerprint in list(emitted.items()):
        # Alert ids are "<type>:<call_id>"; the bookkeeping keys have no colon.
        if ":" in alert_id and alert_id not in live and fingerprint != RETRACTED:
            emitted[alert_id] = RETRACTED
            outputs.alerts.append(_retraction(state, alert_id))
    signal = signal_of(state)
    if signal is not None:
        mark = [signal.verdict, signal.ts_us]
        if emitted.get(SIGNAL_KEY) != mark:
            emitted[SIGNAL_KEY] = mark
            outputs.signal = signal
    return updated(state, {"emitted": emitted})


def _retraction(state: CallState, alert_id: str) -> tuple[str, bytes]:
    """The withdrawal of an alert the call's events no longer raise (same id, same portal key)."""
    portal = state.started.portal_id if state.started else state.first.portal_id
    ts_us = state.started.ts_us if state.started else state.first.ts_us
    alert = Alert(alert_id, alert_id.split(":", 1)[0], portal, state.call_id, ts_us, {"state": RETRACTED})
    return portal, alert_to_json(alert)
