"""DLQ records of contract v1.1: a rejected message, its reason and where it came from.

The original value is kept as ``raw`` (UTF-8 text) or, when it is not valid
UTF-8, as ``raw_b64`` (standard base64), never both. Contract v1.1 bounds it:
at most the first 64 KiB of the value (the first 4 KiB for ``too_large``, as
v1 says), and a cut value carries ``raw_truncated``: true and ``raw_bytes``:
the value's full length. So a DLQ record stays far below the 1 MiB a broker
accepts: 64 KiB of control characters, each escaped as six bytes (``\\u00XX``),
make 384 KiB of JSON; ``error`` texts quote at most 80 characters of a value.

Choices the contract leaves open:
- When a cut splits a multi-byte UTF-8 character, the incomplete tail (at most
  3 bytes) is dropped and ``raw`` holds the longest valid prefix, so the
  excerpt stays readable text; ``raw_b64`` is used only when those bytes are
  invalid UTF-8 for another reason.
- A tombstone (``None`` value) is recorded with ``raw`` = ``""``; ``validate``
  gives it the reason ``not_json`` (an absent value is not a JSON document).
"""

from __future__ import annotations

import base64
import codecs
from typing import Any

import orjson

from streams.domain.events import Rejection

# Contract v1.1: an event its call has no room for (beyond CALLSTREAM_MAX_CALL_EVENTS).
CALL_TOO_LARGE = Rejection("call_too_large", "the call already has its maximum number of distinct "
                                             "events (CALLSTREAM_MAX_CALL_EVENTS); this one is not folded")
TOO_LARGE_KEEP_BYTES = 4096
RAW_KEEP_BYTES = 65536  # contract v1.1: raw / raw_b64 hold at most the first 64 KiB


def dlq_record(rejection: Rejection, topic: str, partition: int, offset: int,
               value: bytes | None) -> dict[str, Any]:
    """The ``call-events-dlq`` value for a message of ``topic``/``partition``/``offset``."""
    record: dict[str, Any] = {
        "reason": rejection.reason,
        "error": rejection.error,
        "topic": topic,
        "partition": partition,
        "offset": offset,
    }
    record.update(_raw_field(rejection.reason, value))
    return record


def encode_dlq(rejection: Rejection, topic: str, partition: int, offset: int,
               value: bytes | None) -> bytes:
    """:func:`dlq_record` as UTF-8 JSON bytes, ready to produce."""
    return orjson.dumps(dlq_record(rejection, topic, partition, offset, value))


def _raw_field(reason: str, value: Any) -> dict[str, Any]:
    """``{"raw": text}`` or ``{"raw_b64": base64}`` for the (possibly cut) original value,
    with ``raw_truncated`` and ``raw_bytes`` when it was cut."""
    if value is None:
        return {"raw": ""}
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    elif not isinstance(value, bytes):
        # Not a Kafka value; keep its text form (surrogatepass: never fail on a lone surrogate).
        value = str(value).encode("utf-8", "surrogatepass")
    keep = TOO_LARGE_KEEP_BYTES if reason == "too_large" else RAW_KEEP_BYTES
    if len(value) > keep:
        field: dict[str, Any] = {**_excerpt(value[:keep]), "raw_truncated": True, "raw_bytes": len(value)}
        return field
    try:
        return {"raw": value.decode("utf-8")}
    except UnicodeDecodeError:
        return {"raw_b64": base64.b64encode(value).decode("ascii")}


def _excerpt(head: bytes) -> dict[str, str]:
    """The first bytes of a cut value: text without a broken trailing character, else base64."""
    try:
        # final=False holds back a trailing incomplete sequence instead of failing on it.
        return {"raw": codecs.getincrementaldecoder("utf-8")().decode(head, final=False)}
    except UnicodeDecodeError:
        return {"raw_b64": base64.b64encode(head).decode("ascii")}
