"""Messages the sink refuses, and the ``rejects`` rows that keep them.

A CDR or alert that breaks the contract (:mod:`warehouse.output_checks`), and
any message the typed decoder cannot read, becomes one ``rejects`` row: the
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

from streams.domain.validation_fields import Reject
from warehouse.output_checks import screen as screen_value

if TYPE_CHECKING:
    from warehouse.decode import RawBatch

CHECKED_TABLES = frozenset({"cdrs", "alerts"})
RAW_KEEP_BYTES = 65_536  # contract v1.1: raw values are kept up to their first 64 KiB
EXCERPT_CHARS = 256
ERROR_CHARS = 1000


class Rejected(NamedTuple):
    """One refused message: its row in the batch, the reason and the error text."""

    row: int
    reason: str
    error: str


def screen(table: str, keys: list[bytes | None], values: list[bytes | None],
           check_keys: bool) -> tuple[list[int], list[bytes], list[Rejected]]:
    """The rows that pass the contract (with their canonical values) and those refused."""
    kept: list[int] = []
    canonical: list[bytes] = []
    refused: list[Rejected] = []
    for row, (key, value) in enumerate(zip(keys, values)):
        try:
            canonical.append(screen_value(table, key, value, check_key=check_keys))
        except Reject as exc:
            refused.append(Rejected(row, exc.reason, exc.error))
        else:
            kept.append(row)
    return kept, canonical, refused


def _excerpt(value: bytes | None) -> str | None:
    return None if value is None else value[:EXCERPT_CHARS].decode("utf-8", "replace")


def rejects_table(raw: "RawBatch", refused: list[Rejected]) -> pa.Table:
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
