"""Two workers in one group without standby copies of the in-memory tables (issue 16).

The group's assignment is read from the broker (what each member was told to
fetch): a member holds the hot tables' changelog partitions of its own events
partitions only, and the archive's (RocksDB) for its own plus one standby
copy. Then one worker is killed with ``kill -9`` while events arrive: the
survivor, which held no copy of the moved partitions' hot state, rebuilds it
from the changelogs and the outputs are exactly those of an uninterrupted
reference run and of the pure core. The workers run with the project's own
session timeout and heartbeat (``CALLSTREAM_WORKER_SESSION_TIMEOUT_S``), not
Faust's environment overrides.
"""

from __future__ import annotations

import time

import pytest

from tests.integration.kill_support import (
    CALLS,
    PRODUCE_OVER_S,
    assert_like_reference,
    kill_when,
    outputs_of,
    rng,
    simulated,
)
from tests.integration.worker_expect import expect
from tests.integration.worker_harness import (
    BackgroundProduce,
    Fleet,
    Probe,
    output_settings,
    read_topic,
    split_between,
    wait_for,
    wait_until_done,
    worker_settings,
)

pytestmark = [pytest.mark.integration, pytest.mark.alone]  # kills or times processes: nothing beside it
__all__ = ["rng", "simulated", "worker_settings"]  # fixtures, imported for pytest


def _changelogs(settings) -> tuple[str, list[str]]:
    group = settings.worker_group
    return (f"{group}-archived_calls_by_id-changelog",
            [f"{group}-calls_by_id-changelog", f"{group}-outages_by_portal-changelog"])


def _members(probe: Probe, settings) -> list[dict[str, set[int]]]:
    """Per member of the stable group: topic -> partitions it was assigned ([] while rebalancing)."""
    described = probe.admin.describe_groups([settings.worker_group])[settings.worker_group]
    if described.get("group_state") != "Stable":
        return []
    members = []
    for member in described.get("members") or []:
        held: dict[str, set[int]] = {}
        for item in (member.get("member_assignment") or {}).get("assigned_partitions", []):
            held.setdefault(item["topic"], set()).update(item["partitions"])
        members.append(held)
    return members


def _assert_no_standby_of_memory_tables(members: list[dict[str, set[int]]], settings) -> None:
    archive, memory = _changelogs(settings)
    everything = set(range(settings.events_partitions))
    for held in members:
        own = held[settings.topic_events]
        for topic in memory:
            assert held.get(topic, set()) == own, (topic, held)  # active only: no standby copy
        # The archive keeps one standby copy (on a peer) when there is a peer.
        assert held[archive] >= own
        assert held[archive] == (everything if len(members) > 1 else own), (archive, held)
    assert set().union(*(held[settings.topic_events] for held in members)) == everything


def test_two_workers_without_hot_standbys_survivor_rebuilds_moved_state(worker_settings, simulated,
                                                                        rng, tmp_path):
    settings = worker_settings
    reference = output_settings(settings, "ref")
    messages, _ = simulated
    with Fleet(tmp_path) as fleet:
        ref = fleet.start(reference, "reference")
        pair = [fleet.start(settings, "worker-a"),
                fleet.start(settings.replace(state_dir=f"{settings.state_dir}-b"), "worker-b")]
        probe = Probe(settings)
        try:
            wait_for(lambda: split_between(probe, settings, 2), "both workers holding partitions",
                     timeout=90, workers=pair)
            members = wait_for(lambda: (lambda m: m if len(m) == 2 else None)(_members(probe, settings)),
                               "the pair's assignment", timeout=30, workers=pair)
            _assert_no_standby_of_memory_tables(members, settings)
            sending = BackgroundProduce(settings, [(m.key, m.value) for m in messages], PRODUCE_OVER_S)
            victim, survivor = rng.sample(pair, 2)
            left, _ = kill_when(settings, victim, int(rng.uniform(0.1, 0.6) * CALLS), [survivor])
            killed_at = time.monotonic()
            assert left > 0, "the group finished before a worker was killed: nothing was tested"
            # Nothing overrides the session timeout: the project's default moves the partitions.
            wait_for(lambda: survivor.check() or split_between(probe, settings, 1),
                     "the survivor holding every partition", timeout=90, workers=[survivor])
            print(f"{time.monotonic() - killed_at:.1f} s from the kill to the survivor holding everything")
            _assert_no_standby_of_memory_tables(_members(probe, settings), settings)
            sending.join()
        finally:
            probe.close()
        wait_until_done(settings, [survivor], timeout=240)
        wait_until_done(reference, [ref], timeout=240)
        got, want = outputs_of(settings), outputs_of(reference)
        events = read_topic(settings, settings.topic_events)
    assert len(events) == len(messages)
    assert_like_reference(settings, got, want, expect(events, settings), events)
