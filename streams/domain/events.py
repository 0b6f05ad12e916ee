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
from typing import Any, NamedTuple

# The contract's types, sources and enumerated values are declared once for both
# cores (streams/domain/shared.toml); re-exported here, where the events live.
from streams.domain.shared import (
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
)

CONTRACT_VERSION = 1
EVENT_TYPES = frozenset(SOURCE_OF_TYPE)
SOURCES = frozenset(SOURCE_OF_TYPE.values())
__all__ = ["BYPASS_REASONS", "CONTROLLER_RESULTS", "DIRECTIONS", "END_BY", "END_CAUSES", "FORWARD_REASONS",
           "LINES", "OFFER_RULES", "RECORDING_FORMATS", "SOURCE_OF_TYPE", "CONTRACT_VERSION", "EVENT_TYPES",
           "SOURCES", "VOICEMAIL", "CallStarted", "ControllerRequested", "ControllerReplied",
           "ControllerBypassed", "CallOffered", "CallOfferMissed", "CallForwarded", "CallAnswered",
           "RecordingStored", "CallEnded", "Payload", "Event", "Rejection"]

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


Payload = (CallStarted | ControllerRequested | ControllerReplied | ControllerBypassed | CallOffered
           | CallOfferMissed | CallForwarded | CallAnswered | RecordingStored | CallEnded)


class Event(NamedTuple):
    """One valid contract v1 event; ``ts_us`` is UTC microseconds since the epoch."""

    event_id: str
    type: str
    call_id: str
    portal_id: str
    source: str
    node: str
    ts_us: int
    data: Any  # the Payload of ``type``: a union tagged by a string, which type checkers cannot narrow


class Rejection(NamedTuple):
    """Why a message was refused: a contract DLQ ``reason`` and a human ``error``."""

    reason: str
    error: str
