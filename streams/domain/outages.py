"""The ``controller_outage`` rule: a per-portal state machine over call verdicts.

Calls of one portal are spread over every partition (the events' key is the
call), so the worker sends each call's Controller verdict as a
:class:`PortalSignal` keyed by portal, and this machine runs where that portal's
signals land. Contract: the bypass that brings a portal to N bypassed calls
within W of event time opens an outage (its id carries that bypass's ts);
while open no other opens; the portal's next call checked by the Controller
resolves it (same id, ``detail.state`` = ``resolved``).

Choices where the contract is silent, so that the result depends on event
time rather than arrival order as far as a stream allows:
- the window is kept sorted by event time, and the opening bypass is the
  earliest one (by ts, call id) that completes N bypasses within W;
- a checked call resolves an open outage only if its ts is after the opening;
  a checked call that arrives before the outage is detected cannot resolve it
  retroactively;
- resolution clears the window up to the resolving call: bypasses before it
  do not count towards the next outage, and bypasses older than the last
  resolution are ignored;
- a signal is de-duplicated by call id within the window (a worker that
  re-processes events after a crash sends its signals again).
"""

from __future__ import annotations

from bisect import insort
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

import orjson

from streams.domain.alerts import Alert, AlertRules, alert_to_json, digest
from streams.domain.state import CallState
from streams.domain.timefmt import format_ts_ms
from streams.domain.wire import format_ts_wire

_KEEP_EMITTED = 16


class PortalSignal(NamedTuple):
    """A call's Controller verdict as the outage rule needs it."""

    portal_id: str
    call_id: str
    verdict: str  # "bypassed" or "checked"
    ts_us: int


class Episode(NamedTuple):
    opened_us: int
    opened_by: str
    resolved_us: int | None = None
    resolved_by: str | None = None


class OutageState(NamedTuple):
    portal_id: str
    window: tuple[tuple[int, str], ...] = ()  # bypassed (ts_us, call_id), sorted
    open: Episode | None = None
    resolved_until_us: int | None = None
    emitted: Mapping[str, str] = MappingProxyType({})  # alert_id -> digest, newest last


def signal_of(state: CallState) -> PortalSignal | None:
    """The call's verdict signal: bypassed (earliest bypass) or checked (earliest reply)."""
    portal = state.started.portal_id if state.started else state.first.portal_id
    if state.bypassed is not None:
        return PortalSignal(portal, state.call_id, "bypassed", state.bypassed.ts_us)
    if state.replied_first:
        return PortalSignal(portal, state.call_id, "checked", min(state.replied_first).ts_us)
    return None


def apply_signal(state: OutageState | None, signal: PortalSignal,
                 rules: AlertRules) -> tuple[OutageState, list[tuple[Alert, bytes]]]:
    """Advance one portal's machine; returns the new state and the alerts that changed."""
    if state is None:
        state = OutageState(signal.portal_id)
    alerts: list[tuple[Alert, bytes]] = []
    if signal.verdict == "bypassed":
        state = _add_bypass(state, signal, rules)
    elif state.open is not None and signal.ts_us > state.open.opened_us:
        resolved = state.open._replace(resolved_us=signal.ts_us, resolved_by=signal.call_id)
        alerts.append(_outage_alert(state.portal_id, resolved, rules))
        state = _maybe_open(state._replace(
            open=None, resolved_until_us=signal.ts_us,
            window=tuple(item for item in state.window if item[0] > signal.ts_us)), rules)
    if state.open is not None:
        alerts.append(_outage_alert(state.portal_id, state.open, rules))
    return _only_changed(state, alerts)


def _add_bypass(state: OutageState, signal: PortalSignal, rules: AlertRules) -> OutageState:
    entry = (signal.ts_us, signal.call_id)
    if any(call == signal.call_id for _, call in state.window):
        return state
    if state.resolved_until_us is not None and signal.ts_us <= state.resolved_until_us:
        return state
    window = list(state.window)
    insort(window, entry)
    newest = window[-1][0]
    window = [item for item in window if item[0] >= newest - rules.outage_window_us]
    state = state._replace(window=tuple(window))
    return state if state.open is not None else _maybe_open(state, rules)


def _maybe_open(state: OutageState, rules: AlertRules) -> OutageState:
    n = rules.outage_calls
    window = state.window
    for i in range(n - 1, len(window)):
        if window[i][0] - window[i - n + 1][0] <= rules.outage_window_us:
            return state._replace(open=Episode(window[i][0], window[i][1]))
    return state


def _outage_alert(portal_id: str, episode: Episode, rules: AlertRules) -> tuple[Alert, bytes]:
    resolved = episode.resolved_us is not None
    detail: dict[str, Any] = {
        "state": "resolved" if resolved else "open",
        "opened_at": format_ts_ms(episode.opened_us), "opened_by_call_id": episode.opened_by,
        "threshold_calls": rules.outage_calls, "window_s": rules.outage_window_us // 1_000_000,
        "resolved_at": format_ts_ms(episode.resolved_us) if resolved else None,
        "resolved_by_call_id": episode.resolved_by,
    }
    # The id carries the opening bypass's ts in the wire format: milliseconds, or
    # microseconds when it has them, so two outages within one ms stay distinct.
    alert = Alert(f"controller_outage:{portal_id}:{format_ts_wire(episode.opened_us)}",
                  "controller_outage", portal_id, None,
                  episode.resolved_us if resolved else episode.opened_us, detail)
    return alert, alert_to_json(alert)


def _only_changed(state: OutageState,
                  alerts: list[tuple[Alert, bytes]]) -> tuple[OutageState, list[tuple[Alert, bytes]]]:
    # The digests of what was sent make a replayed signal send nothing new.
    emitted = dict(state.emitted)
    out = []
    for alert, payload in alerts:
        fingerprint = digest(payload)
        if emitted.get(alert.alert_id) != fingerprint:
            emitted.pop(alert.alert_id, None)
            emitted[alert.alert_id] = fingerprint
            out.append((alert, payload))
    while len(emitted) > _KEEP_EMITTED:
        emitted.pop(next(iter(emitted)))
    return state._replace(emitted=emitted), out


def outage_state_to_bytes(state: OutageState) -> bytes:
    """Compact JSON for the changelog-backed table."""
    # orjson refuses tuple subclasses: the episode goes as a plain list.
    return orjson.dumps([1, state.portal_id, state.window,
                         list(state.open) if state.open else None, state.resolved_until_us,
                         dict(state.emitted)])


def outage_state_from_bytes(data: bytes) -> OutageState:
    """Inverse of :func:`outage_state_to_bytes`; corrupt input raises ValueError."""
    try:
        version, portal_id, window, open_, resolved_until, emitted = orjson.loads(data)
        if version != 1:
            raise ValueError(f"unknown outage state format {version!r}")
        return OutageState(portal_id, tuple((ts, call) for ts, call in window),
                           Episode(*open_) if open_ else None, resolved_until, dict(emitted))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"corrupt outage state: {exc}") from exc
