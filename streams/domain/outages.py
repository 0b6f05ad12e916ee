"""The ``controller_outage`` rule: a per-portal machine over call verdicts, in event time.

Calls of one portal are spread over every partition (the events' key is the
call), so the worker sends each call's Controller verdict as a
:class:`PortalSignal` keyed by portal, and this machine runs where that portal's
signals land. Contract: the bypass that brings a portal to N bypassed calls
within W of event time opens an outage (its id carries that bypass's ts);
while open no other opens; the portal's next call checked by the Controller
resolves it (same id, ``detail.state`` = ``resolved``).

The rule is applied to the *set* of verdicts in event-time order, never in
arrival order: signals reach a portal from every partition, in an order that
differs from run to run (and a worker re-run after a crash sends some again).
The state keeps every call's latest verdict within a horizon of event time
and recomputes the outages over them whenever one arrives — the cost is one
pass over the portal's recent calls. When a late verdict changes history, an
outage that no longer exists is re-sent with ``detail.state`` ``retracted``
(the only state this rule adds to the contract), so the live set of outages
is a function of the events, whatever their arrival order.

Choices where the contract is silent:
- order is (ts, call id); the opening bypass is the one that completes N
  bypasses within W (inclusive);
- a checked call resolves an open outage only if its ts is after the opening;
- resolution clears the window: bypasses before the resolving call do not
  count towards the next outage, and bypasses at or before it are ignored;
- verdicts older than the horizon (``HORIZON_US`` behind the portal's
  ``ANCHOR_RANK``-th newest verdict, so that a few events stamped ahead of
  time cannot freeze the portal's present), or beyond its newest
  ``MAX_VERDICTS``, are folded into a frozen base and can no longer change an
  emitted outage. The second bound keeps a portal's state small whatever its
  call rate (50,000 verdicts in 6 h made a 3.4 MB state).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import orjson

from streams.domain.alerts import Alert, AlertRules, alert_to_json, digest
from streams.domain.state import CallState
from streams.domain.timefmt import format_ts_ms
from streams.domain.wire import format_ts_wire

HORIZON_US = 6 * 3600 * 1_000_000
ANCHOR_RANK = 8
MAX_VERDICTS = 4096
_FORMAT = 4
_READABLE = (3, 4)  # format 3: no ``unsent``
_RETRACTED = "retracted"


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


class Machine(NamedTuple):
    """The rule's running state after some verdicts (in event-time order)."""

    window: tuple[tuple[int, str], ...] = ()  # bypassed (ts_us, call_id) within W of the newest
    open: Episode | None = None
    resolved_until_us: int | None = None


class OutageState(NamedTuple):
    portal_id: str
    window: tuple[tuple[int, str], ...] = ()  # the machine after every verdict held
    open: Episode | None = None
    resolved_until_us: int | None = None
    # alert_id -> [digest of what was sent (or "retracted"), opening ts_us, opening call]
    emitted: Mapping[str, list] = MappingProxyType({})
    verdicts: Mapping[str, tuple[int, str]] = MappingProxyType({})  # call -> (ts_us, verdict)
    base: Machine = Machine()  # the machine at the horizon: verdicts before it are frozen
    cut_us: int | None = None  # verdicts before this ts are in ``base``
    partition: int | None = None  # of the signals topic, set by the worker
    # Alert payloads decided with this state and not yet known to be delivered:
    # the worker stores the state before it sends them, and whoever loads the
    # state without knowing they went out sends them again (flag_outages.py).
    unsent: tuple[bytes, ...] = ()


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
    """Add one verdict and recompute; returns the new state and the alerts that changed."""
    return apply_signals(state or OutageState(signal.portal_id), [signal], rules)


def apply_signals(state: OutageState, signals: Iterable[PortalSignal],
                  rules: AlertRules) -> tuple[OutageState, list[tuple[Alert, bytes]]]:
    """Add several verdicts of one portal, recompute once, return the alerts that changed."""
    verdicts = dict(state.verdicts)
    changed = False
    for signal in signals:
        new = (signal.ts_us, signal.verdict)
        if (state.cut_us is not None and signal.ts_us < state.cut_us) or verdicts.get(signal.call_id) == new:
            continue  # older than the horizon, or already known
        verdicts[signal.call_id] = new
        changed = True
    if not changed:
        return state, []
    state = _advance_cut(state._replace(verdicts=verdicts), rules)
    machine, episodes = run(state.base, _ordered(state.verdicts), rules)
    state = state._replace(window=machine.window, open=machine.open,
                           resolved_until_us=machine.resolved_until_us)
    return _only_changed(state, episodes, rules)


def _ordered(verdicts: Mapping[str, tuple[int, str]]) -> list[tuple[int, str, str]]:
    return sorted((ts, call, verdict) for call, (ts, verdict) in verdicts.items())


def run(machine: Machine, ordered: Iterable[tuple[int, str, str]],
        rules: AlertRules) -> tuple[Machine, list[Episode]]:
    """The rule over verdicts in (ts, call) order: the final machine and every episode seen."""
    window, open_, resolved_until = list(machine.window), machine.open, machine.resolved_until_us
    episodes: list[Episode] = []
    n, w = rules.outage_calls, rules.outage_window_us
    for ts_us, call_id, verdict in ordered:
        if verdict == "bypassed":
            if resolved_until is not None and ts_us <= resolved_until:
                continue
            window.append((ts_us, call_id))
            while window[0][0] < ts_us - w:
                window.pop(0)
            if open_ is None and len(window) >= n and ts_us - window[-n][0] <= w:
                open_ = Episode(ts_us, call_id)
        elif open_ is not None and ts_us > open_.opened_us:
            episodes.append(open_._replace(resolved_us=ts_us, resolved_by=call_id))
            open_, resolved_until, window = None, ts_us, []
    if open_ is not None:
        episodes.append(open_)
    return Machine(tuple(window), open_, resolved_until), episodes


def _advance_cut(state: OutageState, rules: AlertRules) -> OutageState:
    """Freeze into the base machine the verdicts more than the horizon behind the portal's
    recent ones, and all but the newest MAX_VERDICTS."""
    stamps = sorted(ts for ts, _ in state.verdicts.values())
    cut = stamps[-min(len(stamps), ANCHOR_RANK)] - HORIZON_US
    if len(stamps) > MAX_VERDICTS:
        cut = max(cut, stamps[-MAX_VERDICTS - 1] + 1)
    if state.cut_us is not None and cut <= state.cut_us:
        return state
    old = [item for item in _ordered(state.verdicts) if item[0] < cut]
    if not old:
        return state._replace(cut_us=cut)
    base, _ = run(state.base, old, rules)
    keep = {call: v for call, v in state.verdicts.items() if v[0] >= cut}
    return state._replace(base=base, verdicts=keep, cut_us=cut)


def _outage_alert(portal_id: str, episode: Episode, rules: AlertRules,
                  retracted: bool = False) -> tuple[Alert, bytes]:
    resolved_us = episode.resolved_us
    resolved = resolved_us is not None
    detail: dict[str, Any] = {
        "state": "retracted" if retracted else "resolved" if resolved else "open",
        "opened_at": format_ts_ms(episode.opened_us), "opened_by_call_id": episode.opened_by,
        "threshold_calls": rules.outage_calls, "window_s": rules.outage_window_us // 1_000_000,
        "resolved_at": format_ts_ms(resolved_us) if resolved_us is not None else None,
        "resolved_by_call_id": episode.resolved_by,
    }
    # The id carries the opening bypass's ts in the wire format: milliseconds, or
    # microseconds when it has them, so two outages within one ms stay distinct.
    alert = Alert(f"controller_outage:{portal_id}:{format_ts_wire(episode.opened_us)}",
                  "controller_outage", portal_id, None,
                  resolved_us if resolved_us is not None else episode.opened_us, detail)
    return alert, alert_to_json(alert)


def _only_changed(state: OutageState, episodes: list[Episode],
                  rules: AlertRules) -> tuple[OutageState, list[tuple[Alert, bytes]]]:
    # Digests of what was sent make a replayed verdict send nothing new; an
    # outage sent before but absent now (history changed) is sent as retracted.
    emitted = dict(state.emitted)
    current = {}
    for episode in episodes:
        alert, payload = _outage_alert(state.portal_id, episode, rules)
        current[alert.alert_id] = (alert, payload, episode)
    out = []
    for alert_id, (alert, payload, episode) in current.items():
        fingerprint = digest(payload)
        if alert_id not in emitted and episode.resolved_us is not None:
            # Opened and resolved within one batch: still say it opened first.
            out.append(_outage_alert(state.portal_id, Episode(episode.opened_us, episode.opened_by),
                                     rules))
        if alert_id not in emitted or emitted[alert_id][0] != fingerprint:
            emitted[alert_id] = [fingerprint, episode.opened_us, episode.opened_by]
            out.append((alert, payload))
    cut = state.cut_us
    for alert_id, (fingerprint, opened_us, opened_by) in list(emitted.items()):
        if alert_id in current or fingerprint == _RETRACTED or (cut is not None and opened_us < cut):
            continue  # live, already retracted, or frozen history that cannot have changed
        alert, payload = _outage_alert(state.portal_id, Episode(opened_us, opened_by), rules,
                                       retracted=True)
        emitted[alert_id] = [_RETRACTED, opened_us, opened_by]
        out.append((alert, payload))
    if cut is not None:  # forget what can no longer change
        emitted = {k: v for k, v in emitted.items() if v[1] >= cut - HORIZON_US}
    return state._replace(emitted=emitted), out


def outage_state_to_bytes(state: OutageState) -> bytes:
    """Compact JSON for the changelog-backed table."""
    # orjson refuses tuple subclasses: episodes and machines go as plain lists.
    return orjson.dumps([_FORMAT, state.portal_id, [list(v) for v in _ordered(state.verdicts)],
                         _machine(Machine(state.window, state.open, state.resolved_until_us)),
                         _machine(state.base), state.cut_us, dict(state.emitted), state.partition,
                         [payload.decode() for payload in state.unsent]])


def _machine(machine: Machine) -> list:
    return [list(machine.window), list(machine.open) if machine.open else None,
            machine.resolved_until_us]


def _unmachine(raw: list) -> Machine:
    window, open_, resolved_until = raw
    return Machine(tuple((ts, call) for ts, call in window),
                   Episode(*open_) if open_ else None, resolved_until)


def outage_state_from_bytes(data: bytes) -> OutageState:
    """Inverse of :func:`outage_state_to_bytes`; corrupt input raises ValueError."""
    try:
        raw = orjson.loads(data)
        if not isinstance(raw, list) or not raw or raw[0] not in _READABLE:
            raise ValueError(f"not an outage state of format {_FORMAT}")
        version, portal_id, ordered, now, base, cut, emitted, partition, *rest = raw
        unsent = tuple(payload.encode() for payload in rest[0]) if version >= 4 else ()
        machine = _unmachine(now)
        return OutageState(portal_id, machine.window, machine.open, machine.resolved_until_us,
                           {k: list(v) for k, v in emitted.items()},
                           {call: (ts, verdict) for ts, call, verdict in ordered},
                           _unmachine(base), cut, partition, unsent)
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        raise ValueError(f"corrupt outage state: {exc}") from exc
