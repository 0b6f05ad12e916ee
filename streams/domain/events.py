"""Contract v1 events as typed, immutable values.

An :class:`Event` is only ever built by :mod:`streams.domain.validation`, so
every instance satisfies the contract: ids match the id charset, ``ts_us`` is
UTC microseconds, phones are E.164 and each ``data`` payload has its type's
fields. Unknown extra fields of the wire format are dropped there.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Union

CONTRACT_VERSION = 1

# type -> the source that may emit it (contract table "Event types").
SOURCE_OF_TYPE: dict[str, str] = {
    "call.started": "voice",
    "controller.requested": "voice",
    "controller.replied": "controller",
    "controller.bypassed": "voice",
    "call.offered": "voice",
    "call.offer_missed": "voice",
    "call.forwarded": "voice",
    "call.answered": "voice",
    "recording.stored": "voice",
    "call.ended": "voice",
}
EVENT_TYPES = frozenset(SOURCE_OF_TYPE)
SOURCES = frozenset({"voice", "controller"})

DIRECTIONS = frozenset({"inbound", "outbound", "internal"})
LINES = frozenset({"rented", "operator", "sip", "internal"})
CONTROLLER_RESULTS = frozenset({"ok", "license_error", "config_not_found"})
BYPASS_REASONS = frozenset({"timeout", "unreachable", "error"})
OFFER_RULES = frozenset({"employee", "crm_responsible", "queue"})
FORWARD_REASONS = frozenset({"no_answer", "busy", "rule"})
RECORDING_FORMATS = frozenset({"mp3", "wav"})
END_CAUSES = frozenset(
    {"normal", "busy", "no_answer", "rejected", "failed", "license_error", "config_not_found", "forbidden"}
)
END_BY = frozenset({"caller", "callee", "system"})

VOICEMAIL = "voicemail"


@dataclass(frozen=True, slots=True)
class CallStarted:
    direction: str
    line: str
    from_: str  # "from" on the wire: a phone or a user ref
    to: str
    line_number: str | None
    shown_number: str | None
    user_id: str | None
    extranet: bool = False
    record: bool = False


@dataclass(frozen=True, slots=True)
class ControllerRequested:
    pass


@dataclass(frozen=True, slots=True)
class ControllerReplied:
    result: str
    config_id: str | None


@dataclass(frozen=True, slots=True)
class ControllerBypassed:
    reason: str
    key_saved_at_us: int


@dataclass(frozen=True, slots=True)
class CallOffered:
    user_id: str
    attempt: int
    rule: str
    rings: int


@dataclass(frozen=True, slots=True)
class CallOfferMissed:
    user_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class CallForwarded:
    to: str  # a phone or "voicemail"
    reason: str


@dataclass(frozen=True, slots=True)
class CallAnswered:
    user_id: str


@dataclass(frozen=True, slots=True)
class RecordingStored:
    url: str
    bytes: int
    seconds: Decimal
    format: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    cause: str
    by: str


Payload = Union[
    CallStarted,
    ControllerRequested,
    ControllerReplied,
    ControllerBypassed,
    CallOffered,
    CallOfferMissed,
    CallForwarded,
    CallAnswered,
    RecordingStored,
    CallEnded,
]


@dataclass(frozen=True, slots=True)
class Event:
    """One valid contract v1 event; ``ts_us`` is UTC microseconds since the epoch."""

    event_id: str
    type: str
    call_id: str
    portal_id: str
    source: str
    node: str
    ts_us: int
    data: Payload


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was refused: a contract DLQ ``reason`` and a human ``error``."""

    reason: str
    error: str
