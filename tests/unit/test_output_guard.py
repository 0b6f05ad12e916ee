"""The last check before an output leaves the worker: nothing over the broker's limit is ever sent.

Issue 12, finding 1: a record the broker refuses is not retriable; the worker
exited, restarted and failed on the same batch for good. The core's bounds
make such a record impossible; the guard keeps a bug there from stopping a
partition, and says on the DLQ what it withheld.
"""

from __future__ import annotations

import orjson
import pytest

from streams.domain.dlq import RAW_KEEP_BYTES
from streams.domain.shared import MAX_OUTPUT_BYTES
from streams.outbox import Outbox
from streams.output_guard import OutputGuard

pytestmark = pytest.mark.unit


def test_a_record_within_the_limit_goes_out_as_is() -> None:
    outbox = Outbox()
    guard = OutputGuard(outbox, "dlq")
    value = b"x" * MAX_OUTPUT_BYTES
    guard.add("cdrs", b"c-1", value)
    assert outbox.messages == [("cdrs", b"c-1", value, None, None)] and guard.withheld == 0


def test_a_record_over_the_limit_is_withheld_and_noted_on_the_dlq() -> None:
    outbox = Outbox()
    guard = OutputGuard(outbox, "dlq")
    value = b'{"call_id":"c-1","recording_urls":["' + b"\\u0001" * (MAX_OUTPUT_BYTES // 6 + 1) + b'"]}'
    assert len(value) > MAX_OUTPUT_BYTES
    guard.add("cdrs", b"c-1", value)
    [(topic, key, note, _, _)] = outbox.messages
    assert (topic, key, guard.withheld) == ("dlq", b"c-1", 1)
    record = orjson.loads(note)
    assert record["reason"] == "output_too_large" and record["topic"] == "cdrs" and record["key"] == "c-1"
    assert record["raw_bytes"] == len(value) and record["raw_truncated"] is True
    assert record["raw"] == value[:RAW_KEEP_BYTES].decode()
    assert len(note) <= MAX_OUTPUT_BYTES  # the note itself always fits


def test_a_note_never_exceeds_the_limit_whatever_the_bytes() -> None:
    """Control characters and invalid UTF-8 inflate when written as JSON text: the note stays small."""
    outbox = Outbox()
    guard = OutputGuard(outbox, "dlq", limit=10)
    for value in (b"\x00" * 5_000_000, b"\xff" * 5_000_000, "€".encode() * 2_000_000):
        guard.add("alerts", b"p" * 10_000, value)
    assert guard.withheld == 3
    assert all(len(note) <= MAX_OUTPUT_BYTES for _, _, note, _, _ in outbox.messages)
