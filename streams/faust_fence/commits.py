"""Exact commits for the worker's consumer: never past an unacknowledged message, always past
offsets that hold no record.

Faust commits, per partition, the end of the run of acknowledged offsets that
starts at the committed offset (``_committed_offset``: the next offset to
read). Offsets without a record — transaction markers, aborted transactions
(the consumer reads committed data only), compacted-away records — are
"gaps" it counts as acknowledged. Three slips, fixed here:

- a message sitting exactly at the committed offset and not acknowledged did
  not hold the commit (the check for a hole at the head is off by one);
- a gap beginning at the committed offset was cut off (the same off-by-one),
  so a transaction marker right after the last commit held the commit for good;
- a gap after the last acknowledged offset was folded in only once a later
  record was acknowledged: a partition that ends with a transaction marker
  showed a lag of one until more data came;
- a partition with no record acknowledged since it was assigned is not
  considered for a commit at all, so offsets without a record there (a
  partition whose tail is an aborted transaction) were never committed past.

Batches (see ``streams/faust_fence/transport.py``) acknowledge every offset they cover.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.types import TP
from faust.types.tuples import ack_lock

log = logging.getLogger("callstream.worker")


class ExactCommits:
    """Mixed into the worker's Faust consumer (which sets ``self._holes = {}``)."""

    def ack(self, message: Any) -> bool:
        """Faust's ack; a batch acknowledges every offset from its first record to its last."""
        with ack_lock:
            first_time = not message.acked
            recorded = super().ack(message)
            if first_time and recorded and message.topic in self.batched_topics:
                self._ack_batch(message)
            return recorded

    def _ack_batch(self, message: Any) -> None:
        tp = message.tp
        committed = self._committed_offset[tp]
        start = message.value[0].offset
        if committed is not None:
            start = max(start, committed)
        self._acknowledge(tp, range(start, message.offset))

    def _acknowledge(self, tp: TP, offsets: range) -> None:
        index, acked = self._acked_index[tp], self._acked[tp]
        new = [offset for offset in offsets if offset not in index]
        index.update(new)
        acked.extend(new)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Offsets ``offset_from``..``offset_to`` hold no record: acknowledged once reached."""
        committed = self._committed_offset[tp]
        if committed is not None:
            offset_from = max(offset_from, committed)
        if offset_from <= offset_to:
            # Faust commits only partitions listed in ``_acked``, and a revocation drops a
            # partition from it: one whose only offsets since a rebalance hold no record (an
            # aborted transaction and its marker at its end) was never committed past them,
            # its lag stayed, and the stall watchdog rebalanced it again and again (seen in CI).
            self._acked[tp]  # noqa: B018 - the defaultdict lists the partition
            gap = self._gap[tp]
            gap.addi(offset_from, offset_to + 1)  # intervals exclude their end
            await asyncio.sleep(0)
            gap.merge_overlaps()

    def _fold_gaps(self, tp: TP, committed: int) -> None:
        """Gaps below or right after the acknowledged offsets (or at the committed one) become acknowledged."""
        acked, gap = self._acked[tp], self._gap[tp]
        reach = max(max(acked) + 1, committed) if acked else committed
        for interval in sorted(gap):
            if interval.begin > reach:
                break
            self._acknowledge(tp, range(max(interval.begin, committed), interval.end))
            reach = max(reach, interval.end)
        gap.chop(0, reach)

    def _new_offset(self, tp: TP) -> Any:
        committed = self._committed_offset[tp]
        if self._gap[tp]:
            # Never committed: reading began at the log's start (auto.offset.reset earliest).
            self._fold_gaps(tp, committed if committed is not None else 0)
        acked = self._acked[tp]
        if acked and committed and min(acked) > committed:
            lowest = min(acked)
            if self._holes.get(tp) != (committed, lowest):
                self._holes[tp] = (committed, lowest)
                log.warning("commit of %s held at offset %d: offsets %d..%d are not acknowledged "
                            "and %d is", tp, committed, committed, lowest - 1, lowest)
            return None
        self._holes.pop(tp, None)
        return super()._new_offset(tp)
