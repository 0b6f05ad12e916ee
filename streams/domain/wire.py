"""Contract v1 wire format: the inverse of :func:`streams.domain.validation.validate`.

``validate(encode_event(e)) == e`` for every valid ``Event`` ``e``. Timestamps keep
their microseconds (milliseconds are printed when the sub-millisecond digits are
zero); ``seconds`` is written as a JSON number, so a ``Decimal`` with more
significant digits than a double holds would not survive (``validate`` never
makes one: it reads ``seconds`` through ``float``).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from streams.domain.events import (
    CONTRACT_VERSION,
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
)
from streams.domain.timefmt import us_to_datetime

_INT64_MAX = 2**63 - 1


def format_ts_wire(ts_us: int) -> str:
    """RFC 3339 UTC: ``...30.123Z`` when the sub-millisecond digits are zero, else ``...30.123456Z``."""
    moment = us_to_datetime(ts_us)
    # Formatted by hand, not strftime: glibc's %Y does not zero-pad years before 1000.
    head = (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
            f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}")
    micros = moment.microsecond
    if micros % 1000 == 0:
        return f"{head}.{micros // 1000:03d}Z"
    return f"{head}.{micros:06d}Z"


def seconds_to_json(seconds: Decimal) -> int | float:
    """The JSON number for a ``seconds`` Decimal: an int when it is written without a fraction."""
    exponent = seconds.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0 and seconds <= _INT64_MAX:
        return int(seconds)
    return float(seconds)


def event_to_dict(event: Event) -> dict[str, Any]:
    """The exact wire shape of ``event``: envelope in contract order, ``from`` not ``from_``."""
    return {
        "event_id": event.event_id,
        "v": CONTRACT_VERSION,
        "type": event.type,
        "call_id": event.call_id,
        "portal_id": event.portal_id,
        "source": event.source,
        "node": event.node,
        "ts": format_ts_wire(event.ts_us),
        "data": _DATA_WRITERS[type(event.data)](event.data),
    }


def encode_event(event: Event) -> bytes:
    """The ``call-events`` message value of ``event`` (UTF-8 JSON)."""
    return orjson.dumps(event_to_dict(event))


def _call_started(p: CallStarted) -> dict[str, Any]:
    return {
        "direction": p.direction,
        "line": p.line,
        "from": p.from_,
        "to": p.to,
        "line_number": p.line_number,
        "shown_number": p.shown_number,
        "user_id": p.user_id,
        "extranet": p.extranet,
        "record": p.record,
    }


def _recording_stored(p: RecordingStored) -> dict[str, Any]:
    return {"url": p.url, "bytes": p.bytes, "seconds": seconds_to_json(p.seconds), "format": p.format}


_DATA_WRITERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    CallStarted: _call_started,
    ControllerRequested: lambda p: {},
    ControllerReplied: lambda p: {"result": p.result, "config_id": p.config_id},
    ControllerBypassed: lambda p: {"reason": p.reason, "key_saved_at": format_ts_wire(p.key_saved_at_us)},
    CallOffered: lambda p: {"user_id": p.user_id, "attempt": p.attempt, "rule": p.rule, "rings": p.rings},
    CallOfferMissed: lambda p: {"user_id": p.user_id, "attempt": p.attempt},
    CallForwarded: lambda p: {"to": p.to, "reason": p.reason},
    CallAnswered: lambda p: {"user_id": p.user_id},
    RecordingStored: _recording_stored,
    CallEnded: lambda p: {"cause": p.cause, "by": p.by},
}
