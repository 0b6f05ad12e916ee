"""glibc's heap settings of the worker (common/heap.py)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from common import heap

pytestmark = pytest.mark.unit
glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")


# Run in a fresh interpreter: threads of other tests allocate too, and a process
# whose threshold another test already raised would not show the difference.
PROBE = """
import ctypes, sys
from common import heap
from streams.census import _Mallinfo2
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = _Mallinfo2
if sys.argv[1] == "fixed":
    assert heap.fix_mmap_threshold()
big = bytearray(4 * 1024 * 1024)
del big
before = mallinfo2().hblks
block = bytearray(1024 * 1024)
print(mallinfo2().hblks - before)
"""


def _mapped_after_a_big_free(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout)


@glibc
def test_a_large_block_freed_does_not_raise_the_mmap_threshold_once_it_is_fixed():
    # glibc's default: freeing a 4 MiB mapped block raises the threshold to 4 MiB and
    # the next 1 MiB block comes from the heap; fixed, it is mapped on its own.
    assert _mapped_after_a_big_free("default") == 0
    assert _mapped_after_a_big_free("fixed") == 1


@glibc
def test_trimming_runs_and_leaves_live_memory_alone():
    trim = heap.trimmer()
    assert trim is not None
    kept = [bytes([i % 256]) * 1000 for i in range(10_000)]
    garbage = [bytes(1000) for _ in range(10_000)]
    del garbage
    assert isinstance(trim(), bool)
    assert all(chunk == bytes([i % 256]) * 1000 for i, chunk in enumerate(kept))
