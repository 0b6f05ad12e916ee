"""Per-call alert rules of contract v1, as functions of a call's state.

Every alert here is a function of the call's *set* of distinct events (its
state), never of arrival order: its id is deterministic, and its ``ts`` and
``detail`` are chosen by (ts, event_id) like the CDR's fields. The worker
re-emits an alert only when its JSON changes, so a re-run produces no
duplicates downstream (the sink keeps the latest message per ``alert_id``).

The one exception is ``recording_missing`` (contract v1.1), which waits for a
recording ``CALLSTREAM_RECORDING_WAIT`` of the worker's clock after the call's
``call.ended`` was seen. The state's bookkeeping carries when that was
(``ENDED_SEEN_KEY``) and whether the wait has passed (``RECORDING_CHECKED_KEY``); once
checked, the alert is again a function of the set (raised while the call has
no recording, retracted when one arrives). In the set form (a rebuild) every
call counts as checked.

The per-portal ``controller_outage`` rule lives in :mod:`streams.domain.outages`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from streams.domain.cdr import Cdr
from streams.domain.shared import PAID_LINES, RECORDING_CHECKED_KEY
from streams.domain.state import CallState
from streams.domain.timefmt import format_ts_ms, seconds_between

_US_PER_S = 1_000_000
_ONE_SECOND = Decimal(1)


@dataclass(frozen=True)
class AlertRules:
    """Thresholds of the alert rules (contract defaults)."""

    outage_calls: int = 5
    outage_window_us: int = 300 * _US_PER_S
    stale_key_after_us: int = 26 * 3600 * _US_PER_S


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert message of the ``alerts`` topic."""

    alert_id: str
    type: str
    portal_id: str
    call_id: str | None
    ts_us: int
    detail: Mapping[str, Any] = field(default_factory=dict)


def alert_to_json(alert: Alert) -> bytes:
    """The contract's alert object, fields in contract order."""
    return orjson.dumps({
        "alert_id": alert.alert_id, "type": alert.type, "portal_id": alert.portal_id,
        "call_id": alert.call_id, "ts": format_ts_ms(alert.ts_us), "detail": dict(alert.detail),
    })


def digest(payload: bytes) -> str:
    """A short fingerprint of an emitted message, kept in state to skip unchanged re-emits."""
    return hashlib.blake2b(payload, digest_size=8).hexdigest()


def call_alerts(state: CallState, cdr: Cdr | None, rules: AlertRules) -> list[Alert]:
    """Every per-call alert the call's events raise (``cdr`` is None until one is built)."""
    portal = state.started.portal_id if state.started else state.first.portal_id
    alerts: list[Alert] = []
    call_id = state.call_id
    if state.bypassed is not None:
        bypass = state.bypassed
        alerts.append(Alert(f"controller_bypassed:{call_id}", "controller_bypassed", portal, call_id,
                            bypass.ts_us, {"reason": bypass.reason,
                                           "key_saved_at": format_ts_ms(bypass.key_saved_at_us)}))
    stale = state.stalest
    if stale is not None and stale.ts_us - stale.key_saved_at_us > rules.stale_key_after_us:
        age_s = (stale.ts_us - stale.key_saved_at_us) // _US_PER_S
        alerts.append(Alert(f"stale_key:{call_id}", "stale_key", portal, call_id, stale.ts_us,
                            {"key_saved_at": format_ts_ms(stale.key_saved_at_us), "key_age_s": age_s,
                             "reason": stale.reason}))
    for reply in state.replied_first:
        if reply.result in ("license_error", "config_not_found"):
            alerts.append(Alert(f"{reply.result}:{call_id}", reply.result, portal, call_id,
                                reply.ts_us, _reply_detail(state, reply.result)))
    started = state.started
    if started is not None and started.extranet and started.line in PAID_LINES:
        alerts.append(Alert(f"extranet_call:{call_id}", "extranet_call", portal, call_id,
                            started.ts_us, {"user_id": started.user_id, "line": started.line,
                                            "direction": started.direction, "to": started.to}))
    if cdr is not None and cdr.unrated and started is not None:
        alerts.append(Alert(f"unrated_call:{call_id}", "unrated_call", portal, call_id,
                            started.ts_us, {"line": cdr.line, "direction": cdr.direction,
                                            "to": cdr.to, "line_number": cdr.line_number,
                                            "talk_s": str(cdr.talk_s)}))
    answered, ended = state.answered, state.ended
    if (state.emitted.get(RECORDING_CHECKED_KEY) and lacks_recording(state)
            and started is not None and answered is not None and ended is not None):
        alerts.append(Alert(f"recording_missing:{call_id}", "recording_missing", portal, call_id,
                            ended.ts_us, {"user_id": answered.user_id, "line": started.line,
                                          "talk_s": str(seconds_between(answered.ts_us, ended.ts_us))}))
    return alerts


def lacks_recording(state: CallState) -> bool:
    """A recorded (``record`` true), answered call that talked at least a second, and has
    no recording (yet)."""
    started, answered, ended = state.started, state.answered, state.ended
    return (started is not None and started.record and answered is not None and ended is not None
            and not state.urls and seconds_between(answered.ts_us, ended.ts_us) >= _ONE_SECOND)


def _reply_detail(state: CallState, result: str) -> dict[str, Any]:
    detail: dict[str, Any] = {"result": result}
    if state.started is not None:
        detail.update(line=state.started.line, direction=state.started.direction,
                      line_number=state.started.line_number)
    if result == "config_not_found":
        # The Controller found no config for the number: typically a development
        # copy of the portal with the telephony module installed is taking calls.
        detail["hint"] = "development copy of the portal taking calls"
    return detail
