"""The words for the data's own names: CDR fields, event types and enumerated values.

The warehouse keeps the contract's names (``talk_s``, ``call.offer_missed``,
``no_answer``); the dashboard shows them in the reader's language through the
message catalogue. A name the tables here do not know (a newer contract, a
producer outside it) is shown as it is.
"""

from __future__ import annotations

from typing import Any

from dashboards.i18n import N_, _

FIELDS = {
    "call_id": N_("call id"), "portal_id": N_("portal"), "version": N_("version"),
    "direction": N_("direction"), "line": N_("line"), "from": N_("from"), "to": N_("to"),
    "line_number": N_("line number"), "shown_number": N_("number shown"), "extranet": N_("extranet user"),
    "user_id": N_("employee"), "started_at": N_("started"), "answered_at": N_("answered"),
    "ended_at": N_("ended"), "ring_s": N_("ringing, s"), "talk_s": N_("talk, s"),
    "duration_s": N_("duration, s"), "status": N_("status"), "hangup_cause": N_("hang-up cause"),
    "queue_attempts": N_("queue attempts"), "forwarded_to": N_("forwarded to"),
    "controller": N_("Controller verdict"), "controller_result": N_("Controller answer"),
    "region": N_("region"), "rate_per_min": N_("rate per minute"), "billed_s": N_("billed, s"),
    "cost": N_("cost"), "currency": N_("currency"), "recording_bytes": N_("recording size, bytes"),
    "recording_s": N_("recording length, s"), "events": N_("events"),
}
EVENTS = {
    "call.started": N_("call started"), "controller.requested": N_("Controller asked"),
    "controller.replied": N_("Controller answered"), "controller.bypassed": N_("Controller bypassed"),
    "call.offered": N_("offered to an employee"), "call.offer_missed": N_("offer not picked up"),
    "call.forwarded": N_("forwarded"), "call.answered": N_("answered"),
    "recording.stored": N_("recording stored"), "call.ended": N_("call ended"),
}
SOURCES = {"voice": N_("voice server"), "controller": N_("Controller")}
VALUES = {
    "direction": {"inbound": N_("inbound"), "outbound": N_("outbound"), "internal": N_("internal")},
    "line": {"rented": N_("rented number"), "operator": N_("operator's number"), "sip": N_("SIP trunk"),
             "internal": N_("internal")},
    "status": {"answered": N_("answered"), "missed": N_("missed"), "busy": N_("busy"),
               "rejected": N_("rejected"), "failed": N_("failed"), "incomplete": N_("incomplete")},
    "hangup_cause": {"normal": N_("normal hang-up"), "busy": N_("busy"), "no_answer": N_("no answer"),
                     "rejected": N_("rejected"), "failed": N_("failed"), "license_error": N_("licence error"),
                     "config_not_found": N_("portal configuration not found"), "forbidden": N_("forbidden")},
    "controller": {"checked": N_("checked"), "bypassed": N_("bypassed"), "none": N_("not asked")},
    "controller_result": {"ok": N_("ok"), "license_error": N_("licence error"),
                          "config_not_found": N_("portal configuration not found")},
}


def field(name: str) -> str:
    """The words for a CDR field."""
    return _(FIELDS[name]) if name in FIELDS else name


def event(kind: Any) -> str:
    """The words for an event type."""
    return _(EVENTS[kind]) if isinstance(kind, str) and kind in EVENTS else str(kind)


def source(name: Any) -> str:
    """The words for an event's source."""
    return _(SOURCES[name]) if isinstance(name, str) and name in SOURCES else str(name)


def value(field_name: str, raw: Any) -> str:
    """The words for an enumerated value of ``field_name`` (any other value: as text)."""
    names = VALUES.get(field_name, {})
    return _(names[raw]) if isinstance(raw, str) and raw in names else str(raw)
