"""One call's step in the worker: fold events in, decide what to emit.

Pure functions over a :class:`CallState`: the worker supplies the state from
its table, the events of one batch in arrival order and its wall clock; it
gets back the new state and the messages to send. Delivery rules (contract):
- a CDR is emitted once both ``call.started`` and ``call.ended`` are seen, and
  each later event that changes the CDR (a new distinct event) emits the next
  version;
- a call lacking either by its incomplete-timeout (worker clock since its last
  event) is emitted as ``incomplete``; any later event emits the next version;
- an alert is emitted when it appears or its JSON changes (digests in state),
  and withdrawn — re-sent with ``detail.state`` ``retracted`` — when the call's
  events stop raising it (a later-arriving ``call.started`` or ``call.ended``
  that wins changes the facts), so the live alerts are those of the set;
- the call's Controller verdict goes to the portal's outage rule as a signal
  whenever it changes.
Versions are deterministic: per call, events are processed in partition
order, so re-processing after a crash re-emits the same (version, CDR) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from streams.domain.alerts import Alert, AlertRules, alert_to_json, call_alerts, digest
from streams.domain.cdr import Cdr
from streams.domain.cdr_json import cdr_to_json
from streams.domain.events import Event
from streams.domain.outages import PortalSignal, signal_of
from streams.domain.rating import TariffTable
from streams.domain.state import CallState, cdr_from_state, fold, is_complete, updated

_SIGNAL = "signal"
_EXPIRED = "expired_at"
RETRACTED = "retracted"


@dataclass
class Outputs:
    """Messages one step produces: (key, value) pairs per topic, plus a portal signal."""

    cdrs: list[bytes] = field(default_factory=list)
    alerts: list[tuple[str, bytes]] = field(default_factory=list)  # (portal_id, alert JSON)
    signal: PortalSignal | None = None


def advance(state: CallState | None, events: Iterable[Event], tariffs: TariffTable,
            rules: AlertRules, now: float, partition: int) -> tuple[CallState | None, Outputs]:
    """Fold a batch of one call's events; the state is None when nothing changed."""
    outputs = Outputs()
    last_cdr: Cdr | None = None
    changed_any = False
    for event in events:
        state, changed = fold(state, event)
        if not changed:
            continue
        changed_any = True
        complete = is_complete(state)
        if complete or state.version > 0:
            last_cdr = cdr_from_state(state, tariffs, incomplete=not complete)
            state = updated(state, {"version": state.version + 1})
            outputs.cdrs.append(cdr_to_json(last_cdr, state.version))
    if not changed_any:
        return None, outputs
    state = updated(state, {"touched_at": now, "partition": partition})
    return _with_alerts(state, last_cdr, rules, outputs), outputs


def expire(state: CallState, tariffs: TariffTable, rules: AlertRules) -> tuple[CallState, Outputs]:
    """Emit the ``incomplete`` CDR of a call that timed out (once per quiet period)."""
    outputs = Outputs()
    cdr = cdr_from_state(state, tariffs, incomplete=True)
    state = updated(state, {"version": state.version + 1,
                            "emitted": {**state.emitted, _EXPIRED: state.touched_at}})
    outputs.cdrs.append(cdr_to_json(cdr, state.version))
    return _with_alerts(state, cdr, rules, outputs), outputs


def needs_expiry(state: CallState, now: float, incomplete_after: float) -> bool:
    """Started or ended is still missing after the timeout, and not yet emitted for it."""
    return (not is_complete(state) and now - state.touched_at >= incomplete_after
            and state.emitted.get(_EXPIRED) != state.touched_at)


def expiry_due(state: CallState, incomplete_after: float) -> float | None:
    """Worker-clock time at which the call times out, or None when it never will."""
    if is_complete(state) or state.emitted.get(_EXPIRED) == state.touched_at:
        return None
    return state.touched_at + incomplete_after


def settled(state: CallState) -> bool:
    """A CDR (complete or incomplete) was emitted: only late events can change it now."""
    return state.version > 0 and expiry_due(state, 0.0) is None


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
        if emitted.get(_SIGNAL) != mark:
            emitted[_SIGNAL] = mark
            outputs.signal = signal
    return updated(state, {"emitted": emitted})


def _retraction(state: CallState, alert_id: str) -> tuple[str, bytes]:
    """The withdrawal of an alert the call's events no longer raise (same id, same portal key)."""
    portal = state.started.portal_id if state.started else state.first.portal_id
    ts_us = state.started.ts_us if state.started else state.first.ts_us
    alert = Alert(alert_id, alert_id.split(":", 1)[0], portal, state.call_id, ts_us, {"state": RETRACTED})
    return portal, alert_to_json(alert)
