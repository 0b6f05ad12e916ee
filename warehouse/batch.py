"""A batch of Kafka messages of one topic, and its Arrow form for DuckDB."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import pyarrow as pa

from warehouse import duck, schema


@dataclass
class RawBatch:
    """Messages of one topic, column-wise, in consumption order."""

    topic: str
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    timestamps_ms: list[int] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    values: list[bytes | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.offsets)

    def add(self, partition: int, offset: int, timestamp_ms: int, key: bytes | None,
            value: bytes | None) -> None:
        """Append one message."""
        self.partitions.append(partition)
        self.offsets.append(offset)
        self.timestamps_ms.append(timestamp_ms)
        self.keys.append(key)
        self.values.append(value)


@cache
def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a warehouse table (DuckDB's mapping of its SQL types)."""
    con = duck.connect()
    try:
        return con.sql(schema.empty_select(schema.TABLES[table])).to_arrow_table().schema
    finally:
        con.close()


def _text_values(values: list[bytes | None]) -> tuple[pa.Array, list[str | None]]:
    """Values as an Arrow string array; invalid UTF-8 becomes null with an error."""
    try:
        return pa.array(values, pa.binary()).cast(pa.string()), [None] * len(values)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        texts, errors = [], []
        for value in values:
            try:
                texts.append(None if value is None else value.decode("utf-8"))
                errors.append(None)
            except UnicodeDecodeError:
                texts.append(None)
                errors.append("value is not valid UTF-8")
        return pa.array(texts, pa.string()), errors


def raw_table(raw: RawBatch) -> pa.Table:
    """The batch as an Arrow table: position, Kafka time, value text, decoding error."""
    values, errors = _text_values(raw.values)
    return pa.table({
        "_row": pa.array(range(len(raw)), pa.int64()),
        "kafka_partition": pa.array(raw.partitions, pa.int32()),
        "kafka_offset": pa.array(raw.offsets, pa.int64()),
        "kafka_ts": pa.array(raw.timestamps_ms, pa.int64()),
        "kafka_key": pa.array(raw.keys, pa.binary()),
        "v": values,
        "utf8_error": pa.array(errors, pa.string()),
    })


def subset(raw: RawBatch, rows: list[int]) -> RawBatch:
    """The messages of ``raw`` at ``rows`` (in that order)."""
    return RawBatch(raw.topic, [raw.partitions[i] for i in rows], [raw.offsets[i] for i in rows],
                    [raw.timestamps_ms[i] for i in rows], [raw.keys[i] for i in rows],
                    [raw.values[i] for i in rows])
