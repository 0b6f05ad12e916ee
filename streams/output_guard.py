"""The last check before a CDR or an alert leaves the worker: it fits what a broker accepts.

Contract v1.1: no DLQ record, CDR or alert may exceed 1 MiB serialized, so
the pipeline never produces a record the broker can refuse — a refusal is
not retriable, the worker would exit, restart and fail on the same batch for
good. The core's bounds make an oversized CDR or alert impossible (100
recording urls of at most 2,048 characters, ids of 64, a DLQ excerpt of 64
KiB): this guard is what keeps a bug there from stopping a partition. Such a
record is not sent as is, and not dropped silently either: a DLQ record says
what was withheld (``output_too_large``, its topic and key, its first 64
KiB), and the worker logs it.
"""

from __future__ import annotations

import logging

import orjson

from streams.domain.dlq import RAW_KEEP_BYTES
from streams.domain.shared import MAX_OUTPUT_BYTES
from streams.outbox import Outbox

log = logging.getLogger("callstream.worker")


class OutputGuard:
    """Adds outputs to an outbox; one over ``MAX_OUTPUT_BYTES`` becomes a DLQ note instead."""

    def __init__(self, outbox: Outbox, topic_dlq: str, limit: int = MAX_OUTPUT_BYTES) -> None:
        self.outbox = outbox
        self.topic_dlq = topic_dlq
        self.limit = limit
        self.withheld = 0

    def add(self, topic: str, key: bytes | None, value: bytes) -> None:
        if len(value) <= self.limit:
            self.outbox.add(topic, key, value)
            return
        self.withheld += 1
        log.error("a %d-byte record for %s (key %r) exceeds %d bytes: withheld, noted on the DLQ",
                  len(value), topic, key[:80] if key else key, self.limit)
        self.outbox.add(self.topic_dlq, key, withheld_record(topic, key, value, self.limit))


def withheld_record(topic: str, key: bytes | None, value: bytes, limit: int, *,
                    reason: str = "output_too_large", error: str | None = None) -> bytes:
    """The DLQ note for bytes the worker could not use (never over 1 MiB itself)."""
    head = value[:RAW_KEEP_BYTES].decode("utf-8", "replace")
    return orjson.dumps({
        "reason": reason,
        "error": error or f"a {len(value)}-byte record for {topic} exceeds the {limit}-byte limit",
        "topic": topic, "partition": None, "offset": None,
        "key": key.decode("utf-8", "replace")[:256] if key is not None else None,
        "raw": head, "raw_truncated": len(value) > RAW_KEEP_BYTES, "raw_bytes": len(value),
    })
