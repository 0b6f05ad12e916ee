"""Hand glibc's free heap back to the system now and then (``malloc_trim``).

Used by the worker, notify and the rebuild's replay processes (a process-wide
setting of the C library, hence here, below every stage).

A call state over 512 bytes is allocated by glibc, not by Python's own arenas,
and so are RocksDB's block-cache blocks and memtables. A worker frees such
blocks by the hundred thousand (every archived call, every replaced state),
and glibc keeps what it freed inside its heap for reuse: the 24-minute soak
saw 19–65 MiB of the worker's RSS free in that heap, returned to nobody.
``malloc_trim(0)`` gives every free page of it back (glibc ≥ 2.8 releases
pages inside the heap, not only its top). It walks the heap once: a few
milliseconds for a few hundred MiB, so once a minute is cheap.

Second, glibc's *dynamic* mmap threshold: a block over 128 KiB is mapped on
its own and unmapped when freed, but each such free raises the threshold to
that block's size (up to 32 MiB), after which the worker's large transient
buffers (fetched record batches, a batch's outputs) land in the heap between
long-lived call states and leave holes when freed. ``fix_mmap_threshold``
pins it at 128 KiB (what ``MALLOC_MMAP_THRESHOLD_=131072`` does). Measured
with 100,000 calls of one busy portal in memory
(``bench/worker_hostile_memory.py``): glibc's free part 48 → 28 MiB, the
worker's settled RSS 248–264 → 236 MiB.

Elsewhere than glibc (musl, macOS) there is nothing to call and both are off.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

TRIM_INTERVAL_S = 60.0
MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


def _libc():
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def fix_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Pin glibc's mmap threshold (no dynamic raising); False where there is no mallopt."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, size))


def trimmer() -> Callable[[], bool] | None:
    """``malloc_trim(0)`` as a callable returning whether memory went back, or None without glibc."""
    malloc_trim = getattr(_libc(), "malloc_trim", None)
    if malloc_trim is None:
        return None
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int
    return lambda: bool(malloc_trim(0))
