"""Which alerts are settled: the cursor of each partition, and the keys still owed.

Every alert read creates zero or more obligations — one per (alert_id,
state, channel) not yet settled — and its offset is settled once they all
are. A partition's cursor is its first unsettled offset (or the next one to
read): what the ledger records, and where a restart resumes.
"""

from __future__ import annotations

from collections import deque


class Progress:
    """Obligations per offset and per key."""

    def __init__(self) -> None:
        self._open: dict[int, deque[list[int]]] = {}  # partition -> [[offset, remaining, msg ts]] in order
        self._by_offset: dict[tuple[int, int], list[int]] = {}
        self._next: dict[int, tuple[int, int]] = {}  # partition -> (next offset, newest msg ts read)
        self._owed: dict[int, list[tuple[int, int]]] = {}  # key (64 bits) -> [(partition, offset)]

    def read(self, partition: int, offset: int, msg_ts_ms: int, keys: list[int]) -> None:
        """An alert was read with ``keys`` owed for it (those not yet owed elsewhere are new)."""
        if keys:
            entry = [offset, len(keys), msg_ts_ms]
            self._open.setdefault(partition, deque()).append(entry)
            self._by_offset[(partition, offset)] = entry
            for key in keys:
                self._owed.setdefault(key, []).append((partition, offset))
        self._next[partition] = (offset + 1, msg_ts_ms)

    def owed(self, key: int) -> bool:
        """True when a delivery of this key is already owed (sent or waiting)."""
        return key in self._owed

    def settle(self, key: int) -> None:
        """The delivery of ``key`` has an outcome: every offset waiting for it is one closer."""
        for partition, offset in self._owed.pop(key, ()):
            entry = self._by_offset.get((partition, offset))
            if entry is None:
                continue
            entry[1] -= 1
            if entry[1] <= 0:
                del self._by_offset[(partition, offset)]
                queue = self._open[partition]
                while queue and queue[0][1] <= 0:
                    queue.popleft()

    def cursor(self, partition: int) -> tuple[int, int] | None:
        """(first unsettled offset, its message time) of a partition; None before anything was read."""
        queue = self._open.get(partition)
        if queue:
            return queue[0][0], queue[0][2]
        return self._next.get(partition)

    @property
    def pending(self) -> int:
        """Keys owed."""
        return len(self._owed)
