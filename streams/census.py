"""What a worker holds in memory, logged on ``kill -USR2 <pid>``.

A soak shows the worker's RSS; this says what it is made of: the calls in
memory and their state bytes, the sweep's schedule, the portals' outage
states, the archive's RocksDB memtables and block caches, the Python objects
the cyclic collector tracks (by type, the most numerous first) and glibc's
heap (bytes objects over 512 bytes, call states among them, are allocated
there, not in Python's own arenas). Two reports minutes apart show what grows.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import resource
from pathlib import Path

from streams.faust_fence.stores import memory_dict, rocksdb_databases

ROCKSDB_PROPERTIES = ("rocksdb.cur-size-all-mem-tables", "rocksdb.block-cache-usage",
                      "rocksdb.estimate-table-readers-mem")
TOP_TYPES = 15


def _table_line(name: str, table) -> str:
    data = memory_dict(table)
    return f"{name}: {len(data):,} keys, {sum(len(v) for v in data.values()):,} value bytes"


def _rocksdb_line(table) -> str:
    totals = [0] * len(ROCKSDB_PROPERTIES)
    databases = rocksdb_databases(table)
    for db in databases.values():
        for i, name in enumerate(ROCKSDB_PROPERTIES):
            totals[i] += db.property_int_value(name) or 0
    memtables, cache, readers = totals
    return (f"archive RocksDB: {len(databases)} databases, memtables {memtables:,} B, "
            f"block caches {cache:,} B, table readers {readers:,} B")


def _rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the peak, where /proc is absent


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _glibc_line() -> str | None:
    """glibc's heap (mallinfo2, glibc >= 2.33): what it took from the system, uses, and holds free."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None  # not glibc, or an older one
    mallinfo2.restype = _Mallinfo2
    info = mallinfo2()
    mib = 1024 * 1024
    return (f"glibc heap: {info.arena / mib:,.0f} MiB from the system + {info.hblkhd / mib:,.0f} MiB mapped, "
            f"{info.uordblks / mib:,.0f} MiB in use, {info.fordblks / mib:,.0f} MiB free")


def report(worker, schedule) -> str:
    """The census as text: one line per holder, then the most numerous tracked types."""
    objects = gc.get_objects()
    types = collections.Counter(type(o).__name__ for o in objects)
    lines = [f"memory census: RSS {_rss_mib():,.0f} MiB, {len(objects):,} tracked objects",
             _table_line("calls in memory (calls_by_id)", worker.calls_by_id),
             f"schedule: {len(schedule):,} calls, {schedule.heap_size():,} heap entries",
             _table_line("outage states (outages_by_portal)", worker.outages_by_portal),
             _rocksdb_line(worker.archived_calls_by_id)]
    glibc = _glibc_line()
    if glibc:
        lines.append(glibc)
    lines += [f"  {count:,} {name}" for name, count in types.most_common(TOP_TYPES)]
    return "\n".join(lines)
