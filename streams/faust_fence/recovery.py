"""Table recovery whose cost per changelog record is about applying it.

A worker that takes over partitions (a peer was killed, the group grew or
shrank) rebuilds their in-memory tables from the changelogs before it
processes their events: Faust's memory store keeps no offsets, so that is
the whole hot changelog of each moved partition. Faust's recovery loop
(``Recovery._slurp_changelogs``) spends per record an ``asyncio.wait_for``
(a task and a timer), two debug log lines formatted whether or not debug is
on, and a "done yet?" check that builds a Counter over every changelog
partition — together as much as the fetch and hand-off of the record; on
the loaded 2-core machine a takeover read ~750 records/s (README,
"Performance").

:class:`Recovery` is the same loop over what the queue holds at once: one
wait when it is empty, the records then taken without waiting, the same
offset bookkeeping and buffers per record, the "done yet?" and standby
checks once per drained bunch. :class:`TableManager` makes Faust use it.
Upstream fix: the same change in ``faust/tables/recovery.py`` (the debug
lines lazily formatted, ``get_nowait`` before ``wait_for``).
"""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import Any

from faust.tables.manager import TableManager as FaustTableManager
from faust.tables.recovery import Recovery as FaustRecovery
from mode import Service
from mode.utils.logging import get_logger

log = get_logger(__name__)

DRAIN_AT_MOST = 5000  # records taken from the queue per bunch (the queue holds stream_buffer_maxsize)


class Recovery(FaustRecovery):
    """Faust's recovery, its changelog loop taking records in bunches."""

    @Service.task  # as Faust's: the service starts it with the recovery manager
    async def _slurp_changelogs(self) -> None:
        queue = self.tables.changelog_queue
        while not self.should_stop:
            try:
                self.signal_recovery_end.clear()
                try:
                    events = [queue.get_nowait()]
                except asyncio.QueueEmpty:
                    try:
                        events = [await asyncio.wait_for(queue.get(), timeout=5.0)]
                    except TimeoutError:
                        if self.should_stop:
                            return
                        await self._signal_end_if_done()
                        continue
                while len(events) < DRAIN_AT_MOST:
                    try:
                        events.append(queue.get_nowait())
                    except asyncio.QueueEmpty:
                        break
                await self._apply(events)
                await self._signal_end_if_done()
                if not (self._standbys_span is None and self.tables.standbys_ready) \
                        and not self.standby_remaining_total():
                    self.tables.on_standbys_ready()
            except Exception as exc:  # noqa: BLE001 - Faust's loop logs and goes on, as here
                log.warning("Error in recovery %r", exc)

    async def _apply(self, events: list) -> None:
        """Faust's per-record bookkeeping: the offset reached, the table's buffer, its flush."""
        now = monotonic()
        active_tps, standby_tps, tp_to_table = self.active_tps, self.standby_tps, self.tp_to_table
        buffers, buffer_sizes = self.buffers, self.buffer_sizes
        for event in events:
            message = event.message
            tp, offset = message.tp, message.offset
            if tp in active_tps:
                table, offsets = tp_to_table[tp], self.active_offsets
                bufsize = buffer_sizes.get(tp) or buffer_sizes.setdefault(tp, table.recovery_buffer_size)
                self._active_events_received_at[tp] = now
            elif tp in standby_tps:
                table, offsets = tp_to_table[tp], self.standby_offsets
                if tp not in buffer_sizes:
                    buffer_sizes[tp] = table.standby_buffer_size
                    self._standby_events_received_at[tp] = now
                bufsize = buffer_sizes[tp]
            else:
                # Faust logs this and then applies the record to the previous record's
                # table (a bug its own comments describe); a partition no longer ours is skipped.
                log.warning("recovery: %s is neither active nor standby (offset %s)", tp, offset)
                continue
            seen = offsets.get(tp)
            if seen is None or offset > seen:
                offsets[tp] = offset
                buffer = buffers[table]
                buffer.append(event)
                await table.on_changelog_event(event)
                if len(buffer) >= bufsize:
                    table.apply_changelog_batch(buffer)
                    buffer.clear()
                    self._last_flush_at = now

    async def _signal_end_if_done(self) -> None:
        """Faust's ``_maybe_signal_recovery_end``: the actives caught up, recovery ends.

        (Faust's aborted-transaction check there applies to its exactly-once mode
        only; the worker is at-least-once and reads committed data.)
        """
        if self.in_recovery and not self.need_recovery():
            self.flush_buffers()
            self._set_recovery_ended()
            self.signal_recovery_end.set()


class TableManager(FaustTableManager):
    """Faust's table manager with :class:`Recovery`."""

    @property
    def recovery(self) -> Any:
        if self._recovery is None:
            self._recovery = Recovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
