"""Contract v1 events as typed, immutable values.

An :class:`Event` is only ever built by :mod:`streams.domain.validation`, so
every instance satisfies the contract: ids match the id charset, ``ts_us`` is
UTC microseconds, phones are E.164 and each ``data`` payload has its type's
fields. Unknown extra fields of the wire format are dropped there.

They are NamedTuples rather than frozen dataclasses: the worker builds two per
event (the envelope and its payload), and a frozen dataclass's
``object.__setattr__`` per field took a seventh of the validation's time.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple, Union

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


class CallStarted(NamedTuple):
    direction: str
    line: str
    from_: str  # "from" on the wire: a phone or a user ref
    to: str
    line_number: str | None
    shown_number: str | None
    user_id: str | None
    extranet: bool = False
    record: bool = False


class ControllerRequested(NamedTuple):
    pass


class ControllerReplied(NamedTuple):
    result: str
    config_id: str | None


class ControllerBypassed(NamedTuple):
    reason: str
    key_saved_at_us: int


class CallOffered(NamedTuple):
    user_id: str
    attempt: int
    rule: str
    rings: int


class CallOfferMissed(NamedTuple):
    user_id: str
    attempt: int


class CallForwarded(NamedTuple):
    to: str  # a phone or "voicemail"
    reason: str


class CallAnswered(NamedTuple):
    user_id: str


class RecordingStored(NamedTuple):
    url: str
    bytes: int
    seconds: Decimal
    format: str


class CallEnded(NamedTuple):
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


class Event(NamedTuple):
    """One valid contract v1 event; ``ts_us`` is UTC microseconds since the epoch."""

    event_id: str
    type: str
    call_id: str
    portal_id: str
    source: str
    node: str
    ts_us: int
    data: Payload


class Rejection(NamedTuple):
    """Why a message was refused: a contract DLQ ``reason`` and a human ``error``."""

    reason: str
    error: str
