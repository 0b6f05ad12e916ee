"""Where a call's state lives: in memory while it can change, on disk after.

Two changelog-backed Faust tables, both co-partitioned with ``call-events``:
- ``calls_by_id`` (in memory): every call that is open or recently settled;
- ``archived_calls_by_id`` (RocksDB on disk): settled calls that stayed quiet
  for ``forget_after``. Memory stays bounded by the calls of the last
  ``forget_after`` seconds, and a late event (a recording stored an hour after
  the call) still finds the call's full state and emits its next version.

Keys are the UTF-8 call id and values the compact bytes of
:mod:`streams.domain.state` (raw serialisers: what recovery reads back from the
changelog is bytes, so live writes use bytes too).

The hot table is an in-memory store: it is read and written through its
store's dict, and its changelog records are sent by the worker's producer to
the call's own partition — what ``table[key] = value`` does, minus the
sensors, the event-context lookup and faust's per-message buffering, which
together cost more than the fold itself on the worker's hot path.
The archive is a RocksDB store with one database per partition, so its
operations run in the context of an event of the call's partition.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from faust.types import EventT

from streams.domain.calls import expiry_due, recording_due
from streams.domain.state import CallState, state_from_bytes, state_to_bytes
from streams.faust_fence.event_context import enter_event, leave_event
from streams.faust_fence.stores import memory_dict, rocksdb_get
from streams.outbox import Outbox

log = logging.getLogger("callstream.worker")


class Summary(NamedTuple):
    """What the schedule and a purge need of a stored call state (not the whole fold)."""

    call_id: str
    partition: int | None
    touched_at: float
    version: int
    done: bool  # it can no longer time out (complete, or its incomplete CDR already sent)
    # worker clock of its first call.ended when a missing recording is still to be
    # checked (recording_missing), else None
    recording_since: float | None = None


def summary_of(state: CallState) -> Summary:
    return Summary(state.call_id, state.partition, state.touched_at, state.version,
                   expiry_due(state, 0.0) is None, recording_due(state, 0.0))


def summary_of_bytes(blob: bytes) -> Summary:
    """The Python core's reading of state bytes (the compiled core has its own)."""
    return summary_of(state_from_bytes(blob))


class CallStore:
    """Load and save call states across the hot table and the archive."""

    def __init__(self, hot, archive, schedule: Schedule,
                 summarize: Callable[[bytes], Summary] | None = None) -> None:
        self.hot = hot
        self.archive = archive
        self.schedule = schedule
        self.summarize = summarize or summary_of_bytes
        self.changelog = Outbox()  # the hot table's records, sent after the outputs

    @property
    def _changelog_topic(self) -> str:
        return self.hot.changelog_topic.get_topic_name()

    @property
    def _hot(self) -> dict:
        return memory_dict(self.hot)

    async def flush_changelog(self, producer) -> None:
        """Send the hot table's pending changelog records and wait until the broker has them.

        A batch is acknowledged (its offsets become committable) only after this:
        a state record that failed or never left would otherwise not stop Faust's
        commit, and the call's events would be committed without their state.
        """
        await self.changelog.flush(producer)

    def load_blob(self, event: EventT, call_id: str) -> tuple[bytes | None, bool]:
        """The call's state bytes (hot table first, then the archive) and whether archived."""
        key = call_id.encode()
        blob = self._hot.get(key)
        if blob is not None:
            return blob, False
        blob = self._archived(event.message.partition, key)
        return blob, blob is not None

    def _archived(self, partition: int, key: bytes) -> bytes | None:
        """The archive copy, read straight from the partition's RocksDB database.

        Every new call misses the hot table and is looked up here. Through the
        table API the lookup set and reset the current event and went through
        four layers of Faust's mappings to reach the same ``db.get`` — about 6 %
        of the worker's CPU in the profile. Keys and values are raw bytes on
        both paths (raw serialisers), and a hit is indexed as Faust's own read
        indexes it, so later deletes find the key's partition.
        """
        return rocksdb_get(self.archive, partition, key)

    def save(self, event: EventT, state: CallState) -> None:
        """Write the state to the hot table.

        A call revived from the archive keeps its archive copy: reads try the hot
        table first, and archiving the call again overwrites it. Deleting it here
        lost calls: RocksDB applies a delete to its local files at once, while the
        hot copy becomes durable only when the batch's changelog is flushed — a
        kill -9 in between left the call in neither (the restarted worker then
        began it again at version 1).
        """
        self.save_blob(event, state_to_bytes(state), summary_of(state))

    def save_blob(self, event: EventT, blob: bytes, summary: Summary) -> None:
        """``save`` for state bytes already written (by the compiled core), and reschedule."""
        key = summary.call_id.encode()
        self._hot[key] = blob
        self.changelog.add(self._changelog_topic, key, blob, event.message.partition)
        self.schedule.track_fields(*summary)

    def archive_state(self, event: EventT, state: CallState) -> None:
        """First half of forgetting: the archive holds the state (flush before dropping)."""
        token = enter_event(event)
        try:
            self.archive[state.call_id.encode()] = state_to_bytes(state)
        finally:
            leave_event(token)

    def drop_hot(self, event: EventT, call_id: str) -> None:
        """Second half of forgetting, once the archive write is durable."""
        key = call_id.encode()
        self._hot.pop(key, None)
        self.changelog.add(self._changelog_topic, key, None, event.message.partition)
        self.schedule.forget(call_id)

    def hot_summaries(self) -> Iterator[Summary]:
        """What the schedule needs of every state in the in-memory table, standbys included."""
        summarize = self.summarize
        for key, blob in list(self._hot.items()):
            if not blob:
                continue
            try:
                yield summarize(blob)
            except ValueError as exc:
                # Unreadable bytes: left for the agent, which notes them on the DLQ and
                # starts the call afresh when its next event arrives; never a stopped sweep.
                log.error("unreadable state of call %r in the hot table: %s", key[:80], exc)

    def purge_local(self, keep_partitions: set[int]) -> tuple[list[Summary], int]:
        """Drop local copies of calls in partitions this worker no longer holds (no changelog).

        Returns the summaries kept and how many were dropped: the sweep rebuilds
        its schedule from the kept ones, so a rebalance reads the hot table once
        (every call's state: with the compiled core, ~10x faster than parsing
        each one into a ``CallState``).
        """
        kept: list[Summary] = []
        dropped = 0
        for summary in self.hot_summaries():
            if summary.partition in keep_partitions:
                kept.append(summary)
            else:
                self._hot.pop(summary.call_id.encode(), None)
                dropped += 1
        return kept, dropped


@dataclass(order=True, slots=True)  # one per call in memory: no __dict__ each
class _Due:
    at: float
    call_id: str = field(compare=False)
    kind: str = field(compare=False)
    touched_at: float = field(compare=False)
    partition: int = field(compare=False)
    retry: bool = field(default=False, compare=False)  # asked before, not done yet


class Schedule:
    """When each hot call next needs the worker: to expire it, to check its recording
    (recording_missing), or to archive it."""

    def __init__(self, incomplete_after: float, forget_after: float, retry_after: float = 30.0,
                 recording_wait: float = 3600.0):
        self.incomplete_after = incomplete_after
        self.forget_after = forget_after
        self.retry_after = retry_after
        self.recording_wait = recording_wait
        self._heap: list[_Due] = []
        self._current: dict[str, _Due | None] = {}  # call -> its live heap entry (None: nothing due)

    def __len__(self) -> int:
        return len(self._current)

    def track(self, state: CallState) -> None:
        """(Re)schedule a call after its state was written."""
        self.track_fields(*summary_of(state))

    def track_fields(self, call_id: str, partition: int | None, touched_at: float, version: int,
                     done: bool, recording_since: float | None = None) -> None:
        """``track`` from a state's :class:`Summary` fields."""
        if not done:
            due, kind = touched_at + self.incomplete_after, "expire"
        elif recording_since is not None:
            due, kind = recording_since + self.recording_wait, "recording"
        elif version > 0:  # settled: only a late event can change it now
            due, kind = touched_at + self.forget_after, "forget"
        else:
            due, kind = None, ""
        partition = partition if partition is not None else -1
        self._set(call_id, None if due is None else _Due(due, call_id, kind, touched_at, partition))

    def heap_size(self) -> int:
        """Entries in the heap, superseded ones included (the memory census)."""
        return len(self._heap)

    def forget(self, call_id: str) -> None:
        self._current.pop(call_id, None)

    def rebuild(self, summaries: Iterable[Summary], partitions: set[int]) -> None:
        """Start over from the table after a rebalance: only this worker's active partitions."""
        self._heap.clear()
        self._current.clear()
        for summary in summaries:
            if summary.partition in partitions:
                self.track_fields(*summary)

    def due(self, now: float, max_retries: int | None = None) -> list[_Due]:
        """Calls whose time has come; each is retried later unless its state changes.

        At most ``max_retries`` of the calls asked before are asked again (the rest wait
        another ``retry_after``): a retry is for a command lost in a rebalance, and a
        worker that falls behind must not be sent each waiting call again every
        ``retry_after`` — a 30-minute soak on a starved machine grew such re-asks into a
        flood its producer never finished flushing, and the worker stopped.
        """
        ready: list[_Due] = []
        retries = 0
        while self._heap and self._heap[0].at <= now:
            item = heapq.heappop(self._heap)
            if self._current.get(item.call_id) is not item:
                continue  # superseded by a newer schedule, or forgotten
            later = _Due(now + self.retry_after, item.call_id, item.kind, item.touched_at, item.partition,
                         retry=True)
            if item.retry and max_retries is not None:
                if retries >= max_retries:
                    self._set(item.call_id, later)
                    continue
                retries += 1
            ready.append(item)
            self._set(item.call_id, later)
        return ready

    def evictions(self, max_calls: int, now: float) -> list[_Due]:
        """Over ``max_calls`` tracked calls: the quietest (oldest ``touched_at``) down to 90 %
        of it, to be settled and archived early. Each is asked once per ``retry_after``."""
        excess = len(self._current) - max_calls
        if excess <= 0:
            return []
        entries = [e for e in self._current.values() if e is not None and e.kind != "evict"]
        asked = len(self._current) - len(entries)  # evictions asked for and not yet done
        chosen = heapq.nsmallest(excess + max_calls // 10 - asked, entries, key=lambda e: e.touched_at)
        evicting = []
        for entry in chosen:
            item = _Due(now + self.retry_after, entry.call_id, "evict", entry.touched_at, entry.partition)
            self._set(entry.call_id, item)
            evicting.append(item)
        return evicting

    def _set(self, call_id: str, entry: _Due | None) -> None:
        self._current[call_id] = entry
        if entry is None:
            return
        heapq.heappush(self._heap, entry)
        # Superseded entries stay in the heap until popped; rebuild it before
        # they outnumber the live ones (a busy call is rescheduled per batch).
        if len(self._heap) > 2 * len(self._current) + 1024:
            self._heap = [e for e in self._current.values() if e is not None]
            heapq.heapify(self._heap)
