"""Standby replicas only where Faust can use them: the tables whose store keeps its offsets.

A standby replica is a copy of another member's table partitions that a
worker keeps current by replaying their changelog, so that a takeover reads
only the changelog's tail. Faust can do that for a store that remembers the
offset it reached (RocksDB: the archive), but not for its in-memory store:
``memory.Store.persisted_offset`` is always ``None``, so a partition that
becomes active is re-read from the changelog's first offset whatever its
standby held, and ``memory.Store.on_recovery_completed`` drops every key of a
partition that is not active at the end of each recovery — the standby copy
itself. The replay of the hot table's changelog (a record per call per
batch) was the larger part of what two workers spent beyond one
(README, "Performance"), for a copy nothing ever reads.

:class:`PartitionAssignor` is Faust's, minus the standby assignments of
in-memory tables' changelogs: no member fetches them, and their partitions
are recovered where they become active, as Faust does anyway.
"""

from __future__ import annotations

from typing import Any

from faust.assignor.partition_assignor import PartitionAssignor as FaustPartitionAssignor
from faust.stores.memory import Store as MemoryStore


def memory_changelogs(tables: Any) -> frozenset[str]:
    """The changelog topics of ``tables`` (a Faust table manager) whose store is in memory."""
    return frozenset(table.changelog_topic.get_topic_name() for table in tables.values()
                     if isinstance(table.data, MemoryStore))


class PartitionAssignor(FaustPartitionAssignor):
    """Faust's assignor; standbys only of the changelogs of tables that persist their offsets."""

    def _protocol_assignments(self, assignments: Any, *args: Any) -> Any:
        skip = memory_changelogs(self.app.tables)
        for assignment in assignments.values():
            for topic in skip & assignment.standbys.keys():
                assignment.standbys[topic] = []
        return super()._protocol_assignments(assignments, *args)
