"""``kill -9`` on the real broker: a restarted worker, or a surviving one, ends where an uninterrupted run ends.

Each test runs a reference worker (its own group and output topics) over the
same events topic as the workers it kills, and compares the final results: the
latest CDR of every call (minus ``version``), the set of alert ids and the DLQ,
all also equal to what the pure core computes from the stored events. The
events are produced while the workers run, spread over ``PRODUCE_OVER_S``, so
that every kill lands with work left (and rebalances meet live traffic).

The single-worker test also sets ``CALLSTREAM_FORGET_AFTER=1`` (for both runs),
so that settled calls move to the on-disk archive, and late recordings revive
them, while the worker is being killed.

Faust's session timeout is shortened through its own environment variables
(``BROKER_SESSION_TIMEOUT``, ``BROKER_HEARTBEAT_INTERVAL``) so that the group
forgets a killed member in seconds rather than a minute; nothing else differs
from a production worker.
"""

from __future__ import annotations

import pytest

from tests.integration.kill_support import (
    CALLS,
    FAST_REBALANCE,
    PRODUCE_OVER_S,
    QUICK_ARCHIVE,
    assert_like_reference,
    kill_when,
    outputs_of,
    rng,
    simulated,
)
from tests.integration.worker_expect import (
    expect,
)
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

def test_kill_9_mid_run_and_restart_ends_like_an_uninterrupted_run(worker_settings, simulated, rng,
                                                                    tmp_path):
    settings = worker_settings
    reference = output_settings(settings, "ref")
    messages, _ = simulated
    with Fleet(tmp_path) as fleet:
        ref = fleet.start(reference, "reference", **QUICK_ARCHIVE)
        worker = fleet.start(settings, "worker-1", **QUICK_ARCHIVE)
        sending = BackgroundProduce(settings, [(m.key, m.value) for m in messages], PRODUCE_OVER_S)
        left, emitted = kill_when(settings, worker, int(rng.uniform(0.1, 0.6) * CALLS))
        assert left > 0, "the worker finished before it was killed: nothing was tested"
        # Same group, same state dir; killed once more soon after it emits again.
        worker = fleet.start(settings, "worker-2", **QUICK_ARCHIVE)
        kill_when(settings, worker, emitted + int(rng.uniform(0.01, 0.3) * CALLS))
        worker = fleet.start(settings, "worker-3", **QUICK_ARCHIVE)
        sending.join()
        wait_until_done(settings, [worker], timeout=240)
        wait_until_done(reference, [ref], timeout=240)
        got, want = outputs_of(settings), outputs_of(reference)
        events = read_topic(settings, settings.topic_events)
    assert len(events) == len(messages)
    assert_like_reference(settings, got, want, expect(events, settings), events)


def test_two_workers_one_killed_the_survivor_takes_over(worker_settings, simulated, rng, tmp_path):
    settings = worker_settings
    reference = output_settings(settings, "ref")
    messages, _ = simulated
    with Fleet(tmp_path) as fleet:
        ref = fleet.start(reference, "reference", **FAST_REBALANCE)
        pair = [fleet.start(settings, "worker-a", **FAST_REBALANCE),
                fleet.start(settings.replace(state_dir=f"{settings.state_dir}-b"), "worker-b",
                            **FAST_REBALANCE)]
        probe = Probe(settings)
        try:
            wait_for(lambda: split_between(probe, settings, 2), "both workers holding partitions",
                     timeout=90, workers=pair)
            sending = BackgroundProduce(settings, [(m.key, m.value) for m in messages], PRODUCE_OVER_S)
            victim, survivor = rng.sample(pair, 2)
            left, _ = kill_when(settings, victim, int(rng.uniform(0.1, 0.6) * CALLS), [survivor])
            assert left > 0, "the group finished before a worker was killed: nothing was tested"
            sending.join()
            wait_for(lambda: survivor.check() or split_between(probe, settings, 1),
                     "the survivor holding every partition", timeout=90, workers=[survivor])
        finally:
            probe.close()
        wait_until_done(settings, [survivor], timeout=240)
        wait_until_done(reference, [ref], timeout=240)
        got, want = outputs_of(settings), outputs_of(reference)
        events = read_topic(settings, settings.topic_events)
    assert len(events) == len(messages)
    assert_like_reference(settings, got, want, expect(events, settings), events)
