"""An alert message from the ``alerts`` topic, read as hostile input.

Anyone who can write the topic can write anything there: :func:`parse_alert`
turns any bytes into an :class:`Alert` or a :class:`Refusal` with a DLQ-style
reason, and never raises. Only what a notification needs is kept, bounded:
a detail of a megabyte costs a bounded few hundred bytes in memory.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import orjson

MAX_VALUE_BYTES = 1_048_576  # contract v1.1: no alert exceeds 1 MiB serialized
STATES = ("open", "resolved", "retracted")
DETAIL_KEYS = 24  # detail fields kept for the message text
DETAIL_CHARS = 200  # characters kept of a detail string
_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_ALERT_ID = re.compile(r"[A-Za-z0-9._:-]{1,256}")
_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|z|\+00:00)")
# The five patterns above in one, over the fields joined by NUL (which none of them admits, so a NUL
# inside a value cannot shift the fields): (alert_id, type, portal_id[, call_id], ts).
# ASCII digits only (stricter than _TS, whose \d admits any Unicode digit: such a ts takes the checks).
_FIVE = re.compile("\x00".join(p.pattern for p in (_ALERT_ID, _TYPE, _ID, _ID, _TS)), re.ASCII)
_FIVE_NO_CALL = re.compile("\x00".join(p.pattern for p in (_ALERT_ID, _TYPE, _ID, _TS)), re.ASCII)
_STATE_SET = frozenset(STATES)
_SCALARS = (str, int, float, bool, type(None))


class Alert(NamedTuple):
    """One alert message: contract fields, its state, and where it is in the log."""

    alert_id: str
    type: str
    portal_id: str
    call_id: str | None
    ts: str
    state: str
    detail: dict[str, Any]  # scalars only, strings cut to DETAIL_CHARS
    partition: int
    offset: int
    msg_ts_ms: int  # the Kafka message timestamp: decisions use it, so a replay decides the same

    @property
    def pair(self) -> tuple[str, str]:
        """(alert_id, state): what a notification is owed for."""
        return (self.alert_id, self.state)


class Refusal(NamedTuple):
    """A message notify cannot read, with the reason (the contract's DLQ reasons)."""

    reason: str
    error: str
    partition: int
    offset: int


def parse_alert(value: bytes | None, partition: int, offset: int, msg_ts_ms: int) -> Alert | Refusal:
    """The alert in ``value`` or why it is not one; never raises.

    A well-formed alert takes one combined pattern over its five fields and one pass over its detail,
    inline (a catch-up reads tens of thousands a second); anything else goes through the field-by-field
    checks that name the reason (:func:`_checked`, which decides the same for every alert).
    """
    if value is None or len(value) > MAX_VALUE_BYTES:
        return _checked(value, partition, offset, msg_ts_ms)
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return _checked(value, partition, offset, msg_ts_ms)
    if obj.__class__ is not dict:
        return _checked(value, partition, offset, msg_ts_ms)
    get = obj.get
    alert_id, kind, portal, call, ts, detail = (get("alert_id"), get("type"), get("portal_id"), get("call_id"),
                                                get("ts"), get("detail"))
    if not (alert_id.__class__ is str and kind.__class__ is str and portal.__class__ is str
            and ts.__class__ is str and alert_id.startswith(kind + ":")):
        return _checked(value, partition, offset, msg_ts_ms)
    if call is None:
        if _FIVE_NO_CALL.fullmatch(f"{alert_id}\x00{kind}\x00{portal}\x00{ts}") is None:
            return _checked(value, partition, offset, msg_ts_ms)
    elif call.__class__ is not str or _FIVE.fullmatch(f"{alert_id}\x00{kind}\x00{portal}\x00{call}\x00{ts}") is None:
        return _checked(value, partition, offset, msg_ts_ms)
    if detail is None:
        return Alert(alert_id, kind, portal, call, ts, "open", {}, partition, offset, int(msg_ts_ms))
    if detail.__class__ is not dict:
        return _checked(value, partition, offset, msg_ts_ms)
    state = detail.get("state", "open")
    if state.__class__ is not str or state not in _STATE_SET:
        return _checked(value, partition, offset, msg_ts_ms)
    if len(detail) <= DETAIL_KEYS:  # _trim's common case, inline
        kept = {name: field[:DETAIL_CHARS] if field.__class__ is str else field for name, field in detail.items()
                if name.__class__ is str and len(name) <= 64 and field.__class__ in _SCALARS}
    else:
        kept = _trim(detail)
    return Alert(alert_id, kind, portal, call, ts, state, kept, partition, offset, int(msg_ts_ms))


def _checked(value: bytes | None, partition: int, offset: int, msg_ts_ms: int) -> Alert | Refusal:
    """Field by field: the alert, or the first reason it is not one."""
    def refuse(reason: str, error: str) -> Refusal:
        return Refusal(reason, error[:200], partition, offset)

    if value is None:
        return refuse("not_json", "a tombstone (no value)")
    if len(value) > MAX_VALUE_BYTES:
        return refuse("too_large", f"{len(value)} bytes, over 1 MiB")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return refuse("not_json", str(exc))
    if not isinstance(obj, dict):
        return refuse("not_object", f"a JSON {type(obj).__name__}, not an object")
    problem = _field_problem(obj)
    if problem is not None:
        return refuse(*problem)
    detail = obj.get("detail")
    state = detail.get("state", "open") if isinstance(detail, dict) else "open"
    if state not in STATES:
        return refuse("bad_field:detail.state",
                      f"detail.state must be open, resolved or retracted, got {str(state)[:40]!r}")
    return Alert(obj["alert_id"], obj["type"], obj["portal_id"], obj.get("call_id"), obj["ts"], state,
                 _trim(detail) if isinstance(detail, dict) else {}, partition, offset, int(msg_ts_ms))


_FIELDS = (("alert_id", _ALERT_ID, True), ("type", _TYPE, True), ("portal_id", _ID, True),
           ("call_id", _ID, False), ("ts", _TS, True))


def _field_problem(obj: dict[str, Any]) -> tuple[str, str] | None:
    for name, pattern, required in _FIELDS:
        value = obj.get(name)
        if value.__class__ is str and pattern.fullmatch(value):
            continue
        if value is None:
            if required:
                return ("bad_field:" + name if name in obj else "missing_field:" + name, f"{name} is required")
            continue
        return ("bad_field:" + name, f"{name} must be {_EXPECTED[name]}, got {str(value)[:60]!r}")
    if not obj["alert_id"].startswith(obj["type"] + ":"):
        return ("bad_field:alert_id", "alert_id must start with its type and a colon")
    detail = obj.get("detail")
    if detail is not None and detail.__class__ is not dict:
        return ("bad_field:detail", "detail must be an object")
    return None


_EXPECTED = {"alert_id": "1-256 id characters", "type": "an alert type (a-z, 0-9, _)",
             "portal_id": "an id", "call_id": "an id or null", "ts": "an RFC 3339 UTC time"}


def _trim(detail: dict[str, Any]) -> dict[str, Any]:
    """The detail's first scalar fields, strings cut: enough for a message, bounded in size."""
    if len(detail) <= DETAIL_KEYS:  # the common case: every field fits, one comprehension
        return {key: value[:DETAIL_CHARS] if value.__class__ is str else value for key, value in detail.items()
                if key.__class__ is str and len(key) <= 64 and value.__class__ in _SCALARS}
    kept: dict[str, Any] = {}
    for key, value in detail.items():
        if len(kept) >= DETAIL_KEYS:
            break
        if not isinstance(key, str) or len(key) > 64:
            continue
        if isinstance(value, str):
            kept[key] = value[:DETAIL_CHARS]
        elif isinstance(value, (bool, int, float)) or value is None:
            kept[key] = value
    return kept
