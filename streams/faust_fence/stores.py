"""Direct access to the stores behind the worker's Faust tables (the hot path's shortcuts).

- The hot table and the portal table are in-memory stores: their plain dict is
  read and written directly (``Table.data.data``), with the changelog records
  sent by the worker itself — what ``table[key] = value`` does, minus the
  sensors, the current-event lookup and Faust's per-message buffering, which
  together cost more than the fold itself (docs/faust.md, "Tables").
- The archive is a RocksDB store with one database per partition: a lookup goes
  straight to the partition's database instead of through four layers of
  mappings and a current-event dance (~6 % of the worker's CPU), and a hit is
  indexed as Faust's own read indexes it, so that later deletes find the key.
"""

from __future__ import annotations


def memory_dict(table) -> dict:
    """The plain dict of an in-memory (``memory://``) Faust table's store."""
    return table.data.data


def rocksdb_get(table, partition: int, key: bytes) -> bytes | None:
    """``key`` from the RocksDB database of ``partition`` of a ``rocksdb:`` Faust table."""
    store = table.data
    blob = store._db_for_partition(partition).get(key)
    if blob is not None:
        store._key_index[key] = partition
    return blob


def rocksdb_databases(table) -> dict:
    """The open RocksDB databases of a ``rocksdb:`` Faust table, by partition (for the memory census)."""
    return dict(table.data._dbs)
