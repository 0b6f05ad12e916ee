"""Contract v1 validation: raw Kafka bytes in, an :class:`Event` or a :class:`Rejection` out.

``validate`` sits on the worker's hot path and must never raise, whatever the
bytes: every failure becomes a ``Rejection`` whose ``reason`` is one of the
contract's DLQ reasons. Checks run in contract order and stop at the first
failure, so the reason always names the first offending field.

Choices where the contract is silent:
- A required field that is present but ``null`` is ``bad_field``, not ``missing_field``;
  ``extranet``/``record`` may be absent (false) but not null.
- ``user_id`` of call.offered, call.offer_missed and call.answered is a required id.
- Integers are bounded by the signed 64-bit range (what the warehouse stores);
  orjson reads integers beyond 2**64 - 1 as floats, refused as non-integers.
- ``seconds`` goes through a double (``Decimal(str(float))``), so ~17 significant digits.
- URL schemes are case-insensitive (RFC 3986 3.1); an empty port (``http://h:/``) is allowed.
- Timestamps may use lower-case ``t``/``z`` (RFC 3339 5.6); only ASCII digits count.
- Cross-field plausibility (e.g. ``line`` vs ``direction``) is not checked: it is
  analytics' business, not the wire format's, and refusing would lose calls.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from streams.domain.events import (
    BYPASS_REASONS,
    CONTROLLER_RESULTS,
    DIRECTIONS,
    END_BY,
    END_CAUSES,
    FORWARD_REASONS,
    LINES,
    OFFER_RULES,
    RECORDING_FORMATS,
    SOURCE_OF_TYPE,
    CallAnswered,
    CallEnded,
    CallForwarded,
    CallOffered,
    CallOfferMissed,
    CallStarted,
    ControllerBypassed,
    ControllerReplied,
    ControllerRequested,
    Event,
    RecordingStored,
    Rejection,
)
from streams.domain.shared import EARLIEST_TS_US, MAX_AHEAD_US
from streams.domain.validation_fields import (
    MISSING,
    Reject,
    clip,
    enum,
    flag,
    forward_target,
    ident,
    integer,
    known_ident,
    nullable_ident,
    nullable_phone,
    nullable_text,
    party,
    seconds,
    show,
    source,
    timestamp,
    url,
)

MAX_VALUE_BYTES = 1_048_576  # contract: "too_large (over 1 MiB)"
# Contract v1.1: an event's ``ts`` may not lie more than 24 h after its Kafka
# message's own timestamp (MAX_AHEAD_US), nor before 2000-01-01 (EARLIEST_TS_US).
# The message timestamp is stored in the log, so a replay decides the same.

_loads = orjson.loads
_CONTROLLER_REQUESTED = ControllerRequested()


def validate(value: bytes | None, key: bytes | None = None,
             timestamp_ms: int | None = None) -> Event | Rejection:
    """Check one ``call-events`` message against contract v1.1; never raises.

    ``key``, when not None, must be the UTF-8 ``call_id`` (checked last); a None key is
    accepted and left to the caller (the worker re-publishes such an event under its key).
    ``timestamp_ms`` is the Kafka message's timestamp: ``ts`` may not be more than 24 h
    after it. None (or a negative one: a message without timestamp) skips that bound.
    """
    try:
        event = _event(_document(value), timestamp_ms)
        _check_key(key, event.call_id)
        return event
    except Reject as rejection:
        return Rejection(rejection.reason, rejection.error)


def _document(value: Any) -> dict:
    """The parsed JSON object of a message value, or Reject (size, JSON, object)."""
    if value is None:
        raise Reject("not_json", "tombstone: the message has no value (null)")
    if type(value) is not bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise Reject("not_json", f"value must be bytes, got {type(value).__name__}")
        value = bytes(value)
    if len(value) > MAX_VALUE_BYTES:
        raise Reject("too_large", f"value is {len(value)} bytes, over the 1 MiB limit ({MAX_VALUE_BYTES})")
    try:
        doc = _loads(value)
    except ValueError as exc:
        doc = _parse_fallback(value, exc)
    if type(doc) is not dict:
        raise Reject("not_object", f"value must be a JSON object, got {show(doc)}")
    return doc


def _parse_fallback(value: bytes, orjson_error: ValueError) -> Any:
    """Second opinion of the stdlib parser on valid JSON that orjson refuses.

    orjson refuses some valid JSON (numbers overflowing a double such as ``1e400``,
    escaped lone surrogates); the stdlib accepts those, but also NaN and Infinity,
    which are not JSON and are refused here.
    """
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Reject("not_json", f"not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise Reject("not_json", clip(f"not valid JSON: {orjson_error}")) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _event(doc: dict, timestamp_ms: int | None = None) -> Event:
    """Envelope checks in contract order, then the type's data fields."""
    v = doc.get("v", MISSING)
    if v is MISSING:
        raise Reject("missing_field:v", "v (contract version) is missing")
    if type(v) is not int or v != 1:
        raise Reject("bad_version", f"v must be the integer 1, got {show(v)}")
    kind = doc.get("type", MISSING)
    if kind is MISSING:
        raise Reject("missing_field:type", "type is missing")
    parse_data = _DATA_PARSERS.get(kind) if type(kind) is str else None
    if parse_data is None:
        raise Reject("unknown_type", f"unknown event type {show(kind)}")
    event_id = ident(doc, "event_id")
    call_id = known_ident(doc, "call_id")
    portal_id = known_ident(doc, "portal_id")
    emitter = source(doc, SOURCE_OF_TYPE[kind], kind)
    node = known_ident(doc, "node")
    ts_us = timestamp(doc, "ts")
    _check_ts(ts_us, timestamp_ms)
    data = doc.get("data", MISSING)
    if data is MISSING:
        raise Reject("missing_field:data", "data is missing")
    if type(data) is not dict:
        raise Reject("bad_field:data", f"data must be an object, got {show(data)}")
    return _new(Event, (event_id, kind, call_id, portal_id, emitter, node, ts_us, parse_data(data)))


def _check_ts(ts_us: int, timestamp_ms: int | None) -> None:
    """Contract v1.1's bounds of ``ts``: not before 2000, not 24 h after the message's time."""
    if ts_us < EARLIEST_TS_US:
        raise Reject("bad_field:ts", "ts must not be before 2000-01-01T00:00:00Z")
    if timestamp_ms is not None and timestamp_ms >= 0 and ts_us > timestamp_ms * 1000 + MAX_AHEAD_US:
        raise Reject("bad_field:ts", f"ts is more than 24 h after the message's timestamp "
                                     f"({timestamp_ms} ms)")


def _check_key(key: Any, call_id: str) -> None:
    """The message key must be the UTF-8 call_id; None means the caller did not pass one."""
    if key is None:
        return
    if isinstance(key, (bytearray, memoryview)):
        key = bytes(key)
    if key == call_id.encode("ascii") or key == call_id:
        return
    raise Reject("bad_field:call_id", f"message key {show(key)} differs from call_id {call_id!r}")


# Each data parser reads its fields in the contract's order (a tuple display is
# evaluated left to right), so the first bad field is the one reported. The
# payloads are built with ``tuple.__new__``: a NamedTuple's own constructor is
# a Python-level function, and this runs for every event.
_new = tuple.__new__


def _call_started(d: dict) -> CallStarted:
    return _new(CallStarted, (
        enum(d, "direction", DIRECTIONS),
        enum(d, "line", LINES),
        party(d, "from"),
        party(d, "to"),
        nullable_text(d, "line_number"),
        nullable_phone(d, "shown_number"),
        nullable_ident(d, "user_id"),
        flag(d, "extranet"),
        flag(d, "record"),
    ))


def _controller_requested(d: dict) -> ControllerRequested:
    return _CONTROLLER_REQUESTED


def _controller_replied(d: dict) -> ControllerReplied:
    return _new(ControllerReplied, (enum(d, "result", CONTROLLER_RESULTS), nullable_text(d, "config_id")))


def _controller_bypassed(d: dict) -> ControllerBypassed:
    return _new(ControllerBypassed, (enum(d, "reason", BYPASS_REASONS), timestamp(d, "key_saved_at")))


def _call_offered(d: dict) -> CallOffered:
    return _new(CallOffered, (
        ident(d, "user_id"),
        integer(d, "attempt", 1),
        enum(d, "rule", OFFER_RULES),
        integer(d, "rings", 1),
    ))


def _call_offer_missed(d: dict) -> CallOfferMissed:
    return _new(CallOfferMissed, (ident(d, "user_id"), integer(d, "attempt", 1)))


def _call_forwarded(d: dict) -> CallForwarded:
    return _new(CallForwarded, (forward_target(d, "to"), enum(d, "reason", FORWARD_REASONS)))


def _call_answered(d: dict) -> CallAnswered:
    return _new(CallAnswered, (ident(d, "user_id"),))


def _recording_stored(d: dict) -> RecordingStored:
    return _new(RecordingStored, (
        url(d, "url"),
        integer(d, "bytes", 0),
        seconds(d, "seconds"),
        enum(d, "format", RECORDING_FORMATS),
    ))


def _call_ended(d: dict) -> CallEnded:
    return _new(CallEnded, (enum(d, "cause", END_CAUSES), enum(d, "by", END_BY)))


_DATA_PARSERS: dict[str, Any] = {
    "call.started": _call_started,
    "controller.requested": _controller_requested,
    "controller.replied": _controller_replied,
    "controller.bypassed": _controller_bypassed,
    "call.offered": _call_offered,
    "call.offer_missed": _call_offer_missed,
    "call.forwarded": _call_forwarded,
    "call.answered": _call_answered,
    "recording.stored": _recording_stored,
    "call.ended": _call_ended,
}

