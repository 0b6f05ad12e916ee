"""The wire form of a CDR (the value on the ``cdrs`` topic), contract v1.

Fields come in the contract's order. Durations and ``recording_s`` are JSON
numbers with exactly three decimals (``12.500``), written verbatim through
``orjson.Fragment`` so that no float ever touches them; ``rate_per_min`` and
``cost`` are decimal strings; timestamps are RFC 3339 UTC with milliseconds.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from streams.domain.cdr import Cdr
from streams.domain.timefmt import format_ts_ms

CDR_FIELDS = (
    "call_id", "portal_id", "version", "direction", "line", "from", "to", "line_number",
    "shown_number", "extranet", "user_id", "started_at", "answered_at", "ended_at", "ring_s",
    "talk_s", "duration_s", "status", "hangup_cause", "queue_attempts", "forwarded_to",
    "controller", "controller_result", "region", "rate_per_min", "billed_s", "cost", "currency",
    "recording_urls", "recording_bytes", "recording_s", "events",
)
_UINT64_MAX = 2**64 - 1


def _seconds(value: Decimal | None) -> orjson.Fragment | None:
    return None if value is None else orjson.Fragment(format(value, "f").encode())


def _ts(value: int | None) -> str | None:
    return None if value is None else format_ts_ms(value)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _count(value: int) -> int | orjson.Fragment:
    # A sum of several int64 byte counts can leave orjson's 64-bit range.
    return value if value <= _UINT64_MAX else orjson.Fragment(str(value).encode())


def cdr_to_dict(cdr: Cdr, version: int) -> dict[str, Any]:
    """The contract's CDR object as an ordered dict ready for ``orjson.dumps``."""
    if version < 1:
        raise ValueError(f"CDR versions start at 1, got {version}")
    # One unpacking instead of 32 attribute reads: this runs for every CDR version.
    (call_id, portal_id, direction, line, from_, to, line_number, shown_number, extranet, user_id,
     started_at_us, answered_at_us, ended_at_us, ring_s, talk_s, duration_s, status, hangup_cause,
     queue_attempts, forwarded_to, controller, controller_result, region, rate_per_min, billed_s,
     cost, currency, recording_urls, recording_bytes, recording_s, events, _unrated) = cdr
    return {
        "call_id": call_id, "portal_id": portal_id, "version": version,
        "direction": direction, "line": line, "from": from_, "to": to,
        "line_number": line_number, "shown_number": shown_number,
        "extranet": extranet, "user_id": user_id,
        "started_at": _ts(started_at_us), "answered_at": _ts(answered_at_us),
        "ended_at": _ts(ended_at_us), "ring_s": _seconds(ring_s),
        "talk_s": _seconds(talk_s), "duration_s": _seconds(duration_s),
        "status": status, "hangup_cause": hangup_cause,
        "queue_attempts": queue_attempts, "forwarded_to": forwarded_to,
        "controller": controller, "controller_result": controller_result,
        "region": region, "rate_per_min": _money(rate_per_min),
        "billed_s": billed_s, "cost": _money(cost), "currency": currency,
        "recording_urls": list(recording_urls), "recording_bytes": _count(recording_bytes),
        "recording_s": _seconds(recording_s), "events": events,
    }


def cdr_to_json(cdr: Cdr, version: int) -> bytes:
    """The CDR as UTF-8 JSON bytes, the value of one ``cdrs`` message."""
    return orjson.dumps(cdr_to_dict(cdr, version))
