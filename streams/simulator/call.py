"""One simulated call: the facts the scenario decided, and the events it emitted.

The facts (times, outcome, routing, recordings) are set by the scenario as it
plays the call; :mod:`streams.simulator.truth` reads them, never the events,
so the truth file is an oracle independent of any event-folding code.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from streams.simulator.model import Portal


class Outcome(NamedTuple):
    """How a call ends: the status a billing engineer files it under, and the wire cause."""

    status: str   # answered, busy, missed, rejected, failed
    cause: str
    by: str


ANSWERED_BY_CALLER = Outcome("answered", "normal", "caller")
ANSWERED_BY_CALLEE = Outcome("answered", "normal", "callee")
NO_ANSWER = Outcome("missed", "no_answer", "system")
CALLER_GAVE_UP = Outcome("missed", "normal", "caller")
BUSY = Outcome("busy", "busy", "callee")
REJECTED = Outcome("rejected", "rejected", "callee")
FAILED = Outcome("failed", "failed", "system")
FORBIDDEN = Outcome("rejected", "forbidden", "system")
LICENSE_ERROR = Outcome("failed", "license_error", "system")
CONFIG_NOT_FOUND = Outcome("failed", "config_not_found", "system")

# One event before encoding: (ts_us, type, source, node, data).
RawEvent = tuple[int, str, str, str, dict[str, Any]]


class Call:
    """A call being played: its envelope, its facts so far, and its events in order."""

    __slots__ = ("call_id", "portal", "node", "direction", "line", "from_", "to", "line_number",
                 "shown_number", "user_id", "extranet", "record", "zone", "started_us",
                 "answered_us", "answered_by", "ended_us", "outcome", "controller",
                 "controller_result", "bypassed_us", "key_saved_us", "attempts", "forwarded_to",
                 "recordings", "events")

    def __init__(self, call_id: str, portal: Portal, node: str, started_us: int) -> None:
        self.call_id = call_id
        self.portal = portal
        self.node = node
        self.started_us = started_us
        self.answered_us: int | None = None
        self.answered_by: str | None = None
        self.ended_us = started_us
        self.outcome: Outcome | None = None
        self.controller = "none"
        self.controller_result: str | None = None
        self.bypassed_us: int | None = None
        self.key_saved_us: int | None = None
        self.attempts = 0
        self.forwarded_to: str | None = None
        self.recordings: list[tuple[int, int]] = []  # (bytes, milliseconds) per file
        self.events: list[RawEvent] = []

    def start(self, direction: str, line: str, from_: str, to: str, line_number: str | None,
              shown_number: str | None, user_id: str | None, extranet: bool, record: bool,
              zone: str | None) -> None:
        """Record the call's setup and emit ``call.started``."""
        self.direction, self.line, self.from_, self.to = direction, line, from_, to
        self.line_number, self.shown_number, self.user_id = line_number, shown_number, user_id
        self.extranet, self.record, self.zone = extranet, record, zone
        self.voice("call.started", self.started_us, {
            "direction": direction, "line": line, "from": from_, "to": to,
            "line_number": line_number, "shown_number": shown_number, "user_id": user_id,
            "extranet": extranet, "record": record,
        })

    def voice(self, type_: str, ts_us: int, data: dict[str, Any]) -> None:
        """Emit an event of the call's voice server."""
        self.events.append((ts_us, type_, "voice", self.node, data))

    def replied(self, ts_us: int, node: str, result: str, config_id: str | None) -> None:
        """Emit the Controller's reply (from the Controller's own node and clock)."""
        self.controller, self.controller_result = "checked", result
        self.events.append((ts_us, "controller.replied", "controller", node,
                            {"result": result, "config_id": config_id}))

    def bypass(self, ts_us: int, reason: str, key_saved_us: int, key_saved_text: str) -> None:
        """Emit ``controller.bypassed``: the voice server went on with its saved key."""
        self.controller, self.bypassed_us, self.key_saved_us = "bypassed", ts_us, key_saved_us
        self.voice("controller.bypassed", ts_us, {"reason": reason, "key_saved_at": key_saved_text})

    def offer(self, ts_us: int, user_id: str, rule: str, rings: int) -> int:
        """Emit ``call.offered`` with the next attempt number, and return it."""
        self.attempts += 1
        self.voice("call.offered", ts_us, {"user_id": user_id, "attempt": self.attempts,
                                          "rule": rule, "rings": rings})
        return self.attempts

    def forward(self, ts_us: int, to: str, reason: str) -> None:
        """Emit ``call.forwarded``."""
        self.forwarded_to = to
        self.voice("call.forwarded", ts_us, {"to": to, "reason": reason})

    def answer(self, ts_us: int, user_id: str) -> None:
        """Emit ``call.answered``."""
        self.answered_us, self.answered_by = ts_us, user_id
        self.voice("call.answered", ts_us, {"user_id": user_id})

    def end(self, ts_us: int, outcome: Outcome) -> None:
        """Emit ``call.ended`` and fix the call's outcome."""
        self.ended_us, self.outcome = ts_us, outcome
        self.voice("call.ended", ts_us, {"cause": outcome.cause, "by": outcome.by})
