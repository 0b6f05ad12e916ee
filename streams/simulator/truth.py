"""The truth file: what any correct pipeline must derive, from the scenario's own facts.

JSON Lines, one object per line, in two shapes.

A call (one line per simulated call)::

    {"call_id", "portal_id", "direction", "line", "from", "to", "line_number",
     "shown_number", "user_id", "extranet",
     "started_at", "answered_at", "ended_at",        # RFC 3339 UTC, milliseconds
     "status",                                       # answered|busy|missed|rejected|failed
     "hangup_cause", "ring_s", "talk_s", "duration_s",  # seconds as "12.345"
     "queue_attempts", "forwarded_to",
     "controller", "controller_result", "stale_key", # bypassed|checked|none; result; bool
     "recording_count", "recording_bytes", "recording_s",
     "zone",                                         # russia|cis|europe|usa|null: the rated number
     "events"}                                       # distinct events of the call

``user_id`` is the user who answered, else the user who placed the call.
``stale_key`` is true when the call was bypassed with a key saved more than
26 h before the bypass. ``zone`` is the zone of ``to`` for outbound calls and
of the rented number for inbound ones (null for SIP inbound and internal calls).

A malformed message the simulator injected on purpose::

    {"malformed": true, "reason": "<DLQ reason>", "kind": "<what was broken>",
     "key": "<message key>", "index": n}

``index`` is the message's 0-based position among all messages sent (events,
duplicates and malformed ones), in send order.

Every value comes from the facts the scenario decided (times, outcome,
routing, recordings), never from folding the emitted events, so the file is
an independent oracle for the pipeline's CDRs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from streams.simulator.call import Call
from streams.simulator.stamps import format_ts

STALE_AFTER_US = 26 * 3600 * 1_000_000


def seconds_text(delta_us: int) -> str:
    """Microseconds (whole milliseconds here) as a 3-decimal seconds string; negative is 0."""
    ms = max(0, delta_us) // 1000
    return f"{ms // 1000}.{ms % 1000:03d}"


def call_truth(call: Call) -> dict[str, Any]:
    """The truth record of a finished call."""
    outcome = call.outcome
    if outcome is None:
        raise ValueError(f"call {call.call_id} has not ended: its truth is not known yet")
    answered = call.answered_us
    ring_end = answered if answered is not None else call.ended_us
    stale = call.bypassed_us is not None and call.bypassed_us - call.key_saved_us > STALE_AFTER_US
    return {
        "call_id": call.call_id, "portal_id": call.portal.portal_id,
        "direction": call.direction, "line": call.line, "from": call.from_, "to": call.to,
        "line_number": call.line_number, "shown_number": call.shown_number,
        "user_id": call.answered_by or call.user_id, "extranet": call.extranet,
        "started_at": format_ts(call.started_us),
        "answered_at": format_ts(answered) if answered is not None else None,
        "ended_at": format_ts(call.ended_us),
        "status": outcome.status, "hangup_cause": outcome.cause,
        "ring_s": seconds_text(ring_end - call.started_us),
        "talk_s": seconds_text(call.ended_us - answered) if answered is not None else "0.000",
        "duration_s": seconds_text(call.ended_us - call.started_us),
        "queue_attempts": call.attempts, "forwarded_to": call.forwarded_to,
        "controller": call.controller, "controller_result": call.controller_result,
        "stale_key": stale,
        "recording_count": len(call.recordings),
        "recording_bytes": sum(size for size, _ in call.recordings),
        "recording_s": seconds_text(1000 * sum(ms for _, ms in call.recordings)),
        "zone": call.zone, "events": len(call.events),
    }


def malformed_truth(reason: str, kind: str, key: bytes, index: int) -> dict[str, Any]:
    """The truth record of one injected malformed message."""
    return {"malformed": True, "reason": reason, "kind": kind, "key": key.decode("utf-8"),
            "index": index}


@contextmanager
def truth_file(path: str | None) -> Iterator[Callable[[dict[str, Any]], None] | None]:
    """A truth sink writing JSON Lines to ``path``, closed on exit; None when ``path`` is None."""
    if path is None:
        yield None
        return
    with open(path, "wb") as file:
        write, option = file.write, orjson.OPT_APPEND_NEWLINE
        yield lambda record: write(orjson.dumps(record, option=option))
