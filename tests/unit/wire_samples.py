"""Hand-written valid wire events of every contract v1 type, for example-based tests."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from streams.domain.events import Event, Rejection
from streams.domain.validation import validate

CALL_ID = "call-2026-11-25-000123"

SAMPLE_DATA: dict[str, dict[str, Any]] = {
    "call.started": {
        "direction": "outbound", "line": "rented", "from": "user:17", "to": "+74951234567",
        "line_number": "+74957654321", "shown_number": "+74950000000", "user_id": "17",
        "extranet": False, "record": True,
    },
    "controller.requested": {},
    "controller.replied": {"result": "ok", "config_id": "cfg-main"},
    "controller.bypassed": {"reason": "timeout", "key_saved_at": "2026-11-24T03:00:00Z"},
    "call.offered": {"user_id": "17", "attempt": 1, "rule": "queue", "rings": 3},
    "call.offer_missed": {"user_id": "17", "attempt": 1},
    "call.forwarded": {"to": "voicemail", "reason": "no_answer"},
    "call.answered": {"user_id": "17"},
    "recording.stored": {"url": "https://rec.example.com/b24/1.mp3", "bytes": 48213, "seconds": 61.5,
                         "format": "mp3"},
    "call.ended": {"cause": "normal", "by": "caller"},
}


def sample(kind: str = "call.started", **envelope: Any) -> dict[str, Any]:
    """A valid wire dict of ``kind``; keyword arguments replace envelope fields."""
    doc = {
        "event_id": "evt-0001", "v": 1, "type": kind, "call_id": CALL_ID, "portal_id": "b24-acme",
        "source": "controller" if kind == "controller.replied" else "voice", "node": "voice-eu-3",
        "ts": "2026-11-25T10:15:30.123Z", "data": copy.deepcopy(SAMPLE_DATA[kind]),
    }
    doc.update(envelope)
    return doc


def with_data(kind: str, **fields: Any) -> dict[str, Any]:
    """A valid wire dict of ``kind`` with some data fields replaced."""
    doc = sample(kind)
    doc["data"].update(fields)
    return doc


def without(doc: dict[str, Any], name: str, *, in_data: bool = False) -> dict[str, Any]:
    """``doc`` without envelope field ``name`` (or data field with ``in_data``)."""
    del (doc["data"] if in_data else doc)[name]
    return doc


def check(doc: dict[str, Any], key: bytes | None = None) -> Event | Rejection:
    """``validate`` of the JSON encoding of ``doc``."""
    return validate(orjson.dumps(doc), key)


def reason(doc: dict[str, Any], key: bytes | None = None) -> str | None:
    """The rejection reason for ``doc``, or None when it is valid."""
    result = check(doc, key)
    return result.reason if isinstance(result, Rejection) else None
