"""DLQ records of contract v1: a rejected message, its reason and where it came from.

The original value is kept as ``raw`` (UTF-8 text) or, when it is not valid
UTF-8, as ``raw_b64`` (standard base64), never both. Two choices the contract
leaves open:

- ``too_large``: only the first 4 KiB are kept. When the cut at 4096 bytes splits
  a multi-byte UTF-8 character, the incomplete tail (at most 3 bytes) is dropped
  and ``raw`` holds the longest valid prefix, so the excerpt stays readable text;
  ``raw_b64`` is used only when those bytes are invalid UTF-8 for another reason.
- A tombstone (``None`` value) is recorded with ``raw`` = ``""``; ``validate``
  gives it the reason ``not_json`` (an absent value is not a JSON document).
"""

from __future__ import annotations

import base64
import codecs
from typing import Any

import orjson

from streams.domain.events import Rejection

TOO_LARGE_KEEP_BYTES = 4096


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


def _raw_field(reason: str, value: Any) -> dict[str, str]:
    """``{"raw": text}`` or ``{"raw_b64": base64}`` for the (possibly cut) original value."""
    if value is None:
        return {"raw": ""}
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    elif not isinstance(value, bytes):
        # Not a Kafka value; keep its text form (surrogatepass: never fail on a lone surrogate).
        value = str(value).encode("utf-8", "surrogatepass")
    if reason == "too_large" and len(value) > TOO_LARGE_KEEP_BYTES:
        value = value[:TOO_LARGE_KEEP_BYTES]
        try:
            # final=False holds back a trailing incomplete sequence instead of failing on it.
            return {"raw": codecs.getincrementaldecoder("utf-8")().decode(value, final=False)}
        except UnicodeDecodeError:
            return {"raw_b64": base64.b64encode(value).decode("ascii")}
    try:
        return {"raw": value.decode("utf-8")}
    except UnicodeDecodeError:
        return {"raw_b64": base64.b64encode(value).decode("ascii")}
