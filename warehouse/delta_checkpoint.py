"""The Parquet schema of a Delta Lake checkpoint, for the actions the warehouse writes.

One row per action; each row sets one of the struct columns (``protocol``,
``metaData``, ``add``) and leaves the others null, as the Delta protocol's
"Checkpoint Schema" describes. Readers read the columns they know by name, so
the actions the warehouse never writes (``txn``, ``remove`` tombstones,
``commitInfo``) are simply absent.
"""

from __future__ import annotations

import pyarrow as pa

_STRINGS = pa.map_(pa.string(), pa.string())

SCHEMA = pa.schema([
    ("protocol", pa.struct([("minReaderVersion", pa.int32()), ("minWriterVersion", pa.int32())])),
    ("metaData", pa.struct([
        ("id", pa.string()),
        ("name", pa.string()),
        ("description", pa.string()),
        ("format", pa.struct([("provider", pa.string()), ("options", _STRINGS)])),
        ("schemaString", pa.string()),
        ("partitionColumns", pa.list_(pa.string())),
        ("configuration", _STRINGS),
        ("createdTime", pa.int64()),
    ])),
    ("add", pa.struct([
        ("path", pa.string()),
        ("partitionValues", _STRINGS),
        ("size", pa.int64()),
        ("modificationTime", pa.int64()),
        ("dataChange", pa.bool_()),
        ("stats", pa.string()),
    ])),
])
