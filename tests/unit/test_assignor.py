"""The worker group's partition assignment: no standby copies of in-memory tables.

Faust's in-memory store cannot use a standby (``streams/faust_fence/assignor.py``):
fetching their changelogs was most of what two workers spent beyond one.
The assignment is computed by the worker app's own assignor from real
member metadata and real cluster metadata (aiokafka's, fed a metadata
response), as the group leader computes it; no broker needed.
"""

from __future__ import annotations

from collections import Counter

import pytest
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
from aiokafka.protocol.metadata import MetadataResponse_v0

from common.config import Settings
from streams.app import declare, internal_topic_names
from streams.domain.rating import load_tariffs
from streams.faust_fence.assignor import PartitionAssignor, memory_changelogs

pytestmark = pytest.mark.unit

PARTITIONS = 8


def _worker(tmp_path):
    settings = Settings.from_env({}, state_dir=str(tmp_path), events_partitions=PARTITIONS,
                                 worker_group="assign-test")
    return settings, declare(settings, load_tariffs(settings.tariffs_path))


def _cluster(topics: list[str]) -> ClusterMetadata:
    cluster = ClusterMetadata()
    cluster.update_metadata(MetadataResponse_v0(
        brokers=[(0, "127.0.0.1", 9092)],
        topics=[(0, topic, [(0, p, 0, [0], [0]) for p in range(PARTITIONS)]) for topic in topics]))
    return cluster


def _assign(worker, settings, members: int) -> dict[str, dict[str, Counter]]:
    """Per member: per topic, how often each partition is assigned to it (Kafka protocol level)."""
    changelogs = sorted(t.changelog_topic.get_topic_name() for t in worker.app.tables.values())
    topics = [settings.topic_events, *internal_topic_names(settings), *changelogs]
    assignor = worker.app.assignor
    metadata = {f"member-{n}": ConsumerProtocolMemberMetadata(
        assignor.version, topics, assignor.metadata(set(topics)).user_data) for n in range(members)}
    result = assignor.assign(_cluster(topics), metadata)
    return {member: {topic: Counter(parts) for topic, parts in assignment.assignment}
            for member, assignment in result.items()}


def _group_total(assigned: dict[str, dict[str, Counter]], topic: str) -> Counter:
    total: Counter = Counter()
    for topics in assigned.values():
        total.update(topics.get(topic, Counter()))
    return total


def test_the_worker_app_uses_the_fence_assignor(tmp_path):
    _, worker = _worker(tmp_path)
    assert isinstance(worker.app.assignor, PartitionAssignor)
    assert worker.app.assignor.replicas == 1  # standbys stay on where a store can use them


def test_memory_changelogs_are_the_in_memory_tables(tmp_path):
    settings, worker = _worker(tmp_path)
    group = settings.worker_group
    assert memory_changelogs(worker.app.tables) == {f"{group}-calls_by_id-changelog",
                                                    f"{group}-outages_by_portal-changelog"}


@pytest.mark.parametrize("members", [2, 3])
def test_in_memory_changelogs_are_assigned_once_the_archive_twice(tmp_path, members):
    settings, worker = _worker(tmp_path)
    group = settings.worker_group
    assigned = _assign(worker, settings, members)
    every = Counter(range(PARTITIONS))
    # Each partition of the events topic and of an in-memory table's changelog has
    # exactly one owner: the active one. No member fetches another's hot changelog.
    for topic in (settings.topic_events, f"{group}-calls_by_id-changelog",
                  f"{group}-outages_by_portal-changelog"):
        assert _group_total(assigned, topic) == every, topic
    # The archive (RocksDB, offsets persisted) keeps its standby: active + one replica.
    archive = f"{group}-archived_calls_by_id-changelog"
    assert _group_total(assigned, archive) == every + every
    for topics in assigned.values():
        # A member's hot changelog partitions are its events partitions (co-partitioned),
        # and its archive holds those plus the partitions it stands by for.
        events = set(topics[settings.topic_events])
        assert set(topics[f"{group}-calls_by_id-changelog"]) == events
        assert set(topics[archive]) > events
        assert all(count == 1 for count in topics[archive].values())


def test_the_members_learn_no_standby_of_an_in_memory_changelog(tmp_path):
    # What each member reads back from the assignment (Faust's on_assignment):
    # its recovery manager fetches exactly the standbys listed here.
    settings, worker = _worker(tmp_path)
    changelogs = sorted(t.changelog_topic.get_topic_name() for t in worker.app.tables.values())
    topics = [settings.topic_events, *internal_topic_names(settings), *changelogs]
    assignor = worker.app.assignor
    metadata = {f"member-{n}": ConsumerProtocolMemberMetadata(
        assignor.version, topics, assignor.metadata(set(topics)).user_data) for n in range(2)}
    result = assignor.assign(_cluster(topics), metadata)
    assignor.on_assignment(result["member-0"])
    # (Faust lists standbys for every topic of the co-partitioned group; its recovery
    # and the consumer act only on those of changelogs.)
    standby_changelogs = {tp.topic for tp in assignor.assigned_standbys()} & set(changelogs)
    assert standby_changelogs == {f"{settings.worker_group}-archived_calls_by_id-changelog"}
