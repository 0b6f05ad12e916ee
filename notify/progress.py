"""Which alerts are settled: the cursor of each partition, and the keys still owed.

Every alert read creates zero or more obligations — one per (alert_id,
state, channel) not yet settled — and its offset is settled once they all
are. A partition's cursor is its first unsettled offset (or the next one to
read): what the ledger records, and where a restart resumes.

A catch-up reads hundreds of thousands of alerts, each owing one key: an
owed key points straight at its offset's entry (a tuple of entries when a
re-sent alert makes several offsets wait for one key), so settling a key is
a dict pop and a decrement.
"""

from __future__ import annotations

from collections import deque


class Progress:
    """Obligations per offset and per key."""

    def __init__(self) -> None:
        # partition -> [[offset, remaining, msg ts, partition]] in log order; the front is the cursor.
        self._open: dict[int, deque[list[int]]] = {}
        self._next: dict[int, tuple[int, int]] = {}  # partition -> (next offset, newest msg ts read)
        self._owed: dict[int, list[int] | tuple[list[int], ...]] = {}  # key (64 bits) -> its entry (or entries)

    def read(self, partition: int, offset: int, msg_ts_ms: int, keys: list[int]) -> None:
        """An alert was read with ``keys`` owed for it (those not yet owed elsewhere are new)."""
        if keys:
            self.owe(partition, offset, msg_ts_ms, keys)
        self.passed(partition, offset, msg_ts_ms)

    def owe(self, partition: int, offset: int, msg_ts_ms: int, keys: list[int]) -> None:
        """The keys an alert waits for (``read`` without moving the next offset: see :meth:`passed`)."""
        entry = [offset, len(keys), msg_ts_ms, partition]
        queue = self._open.get(partition)
        if queue is None:
            queue = self._open[partition] = deque()
        queue.append(entry)
        owed = self._owed
        for key in keys:
            before = owed.get(key)
            if before is None:
                owed[key] = entry
            elif before.__class__ is tuple:
                owed[key] = (*before, entry)
            else:
                owed[key] = (before, entry)

    def passed(self, partition: int, offset: int, msg_ts_ms: int) -> None:
        """Every alert of ``partition`` up to ``offset`` was read (a fetch's last one, after its ``owe``s)."""
        self._next[partition] = (offset + 1, msg_ts_ms)

    def owed(self, key: int) -> bool:
        """True when a delivery of this key is already owed (sent or waiting)."""
        return key in self._owed

    def settle(self, key: int) -> None:
        """The delivery of ``key`` has an outcome: every offset waiting for it is one closer."""
        self.settle_many((key,))

    def settle_many(self, keys) -> None:
        """:meth:`settle` for each of ``keys`` (a digest settles hundreds at once)."""
        pop, open_ = self._owed.pop, self._open
        for key in keys:
            entry = pop(key, None)
            if entry is None:
                continue
            for one in (entry if entry.__class__ is tuple else (entry,)):
                one[1] -= 1
                if one[1] <= 0:
                    queue = open_[one[3]]
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
