"""Messages the sink refuses, and the ``rejects`` rows that keep them.

A CDR or alert that breaks the contract (:mod:`warehouse.output_checks`), and
any message the decoder cannot read, becomes one ``rejects`` row: the
topic, partition and offset it came from, its Kafka time, a DLQ-style
``reason`` with a readable ``error``, a 256-character excerpt, and the value
itself up to its first 64 KiB (``raw``; ``raw_bytes`` is its full length, so
a cut shows as ``raw_bytes`` > the length of ``raw``), as contract v1.1 keeps
raw values in DLQ records. Nothing refused is dropped silently or blocks the
sink, and nothing refused reaches ``cdrs``, ``alerts`` or the billing CSV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import pyarrow as pa

if TYPE_CHECKING:
    from warehouse.batch import RawBatch

CHECKED_TABLES = frozenset({"cdrs", "alerts"})
RAW_KEEP_BYTES = 65_536  # contract v1.1: raw values are kept up to their first 64 KiB
EXCERPT_CHARS = 256
ERROR_CHARS = 1000


class Rejected(NamedTuple):
    """One refused message: its row in the batch, the reason and the error text."""

    row: int
    reason: str
    error: str


def _excerpt(value: bytes | None) -> str | None:
    return None if value is None else value[:EXCERPT_CHARS].decode("utf-8", "replace")


def rejects_table(raw: RawBatch, refused: list[Rejected]) -> pa.Table:
    """``rejects`` rows (not yet cast to the table's schema) for the refused rows of ``raw``."""
    refused = sorted(refused)
    rows = [r.row for r in refused]
    values = [raw.values[i] for i in rows]
    return pa.table({
        "topic": pa.array([raw.topic] * len(rows), pa.string()),
        "kafka_partition": pa.array([raw.partitions[i] for i in rows], pa.int32()),
        "kafka_offset": pa.array([raw.offsets[i] for i in rows], pa.int64()),
        "ts": pa.array([raw.timestamps_ms[i] * 1000 for i in rows], pa.timestamp("us", tz="UTC")),
        "reason": pa.array([r.reason for r in refused], pa.string()),
        "error": pa.array([r.error[:ERROR_CHARS] for r in refused], pa.string()),
        "raw_excerpt": pa.array([_excerpt(v) for v in values], pa.string()),
        "raw": pa.array([None if v is None else v[:RAW_KEEP_BYTES] for v in values], pa.binary()),
        "raw_bytes": pa.array([None if v is None else len(v) for v in values], pa.int64()),
    })


def prefix_checks(obj: str, max_bytes: int | None = None) -> list[tuple[str, str, str]]:
    """What makes a value no object at all: not UTF-8, a tombstone, over ``max_bytes``, or
    ``obj`` (its parsed form) NULL: not JSON, or JSON but no object."""
    too_large = [(f"strlen(v) > {max_bytes}", "'too_large'",
                  f"'value of ' || strlen(v) || ' bytes is over {max_bytes}'")] if max_bytes else []
    return [("utf8_error IS NOT NULL", "'not_json'", "utf8_error"),
            ("v IS NULL", "'not_json'", "'null value (tombstone)'"), *too_large,
            (f"{obj} IS NULL", "CASE WHEN json_valid(v) THEN 'not_object' ELSE 'not_json' END",
             "'not a JSON object'")]


def first_failure(checks: list[tuple[str, str, str]]) -> tuple[str, str]:
    """(``_failed``: the number of the first (condition, reason, error) that holds, or NULL;
    ``_reason`` and ``_error`` of that check, computed from a column ``_failed``).

    CASE evaluates each WHEN only on the rows no earlier one took, and a THEN only on its own
    rows: the messages are built for refused rows only.
    """
    failed = "CASE " + " ".join(f"WHEN {condition} THEN {n}" for n, (condition, _, _) in enumerate(checks)) + " END"

    def pick(part: int) -> str:
        cases = " ".join(f"WHEN {n} THEN {check[part]}" for n, check in enumerate(checks))
        return f"CASE WHEN _failed IS NULL THEN NULL ELSE coalesce(CASE _failed {cases} END, 'invalid') END"

    return failed, f"{pick(1)} AS _reason, {pick(2)} AS _error"
