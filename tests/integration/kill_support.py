"""What the kill -9 tests share: the simulated traffic, the kill timing, and the comparison with a reference run.

Used by ``test_worker_kill.py`` (one worker killed and restarted, two workers
and one killed) and ``test_worker_scaling.py`` (two workers without standby
copies of the in-memory tables).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import orjson
import pytest

from streams.app import internal_topic_names
from streams.domain.timefmt import parse_ts_us
from streams.simulator import Faults, Knobs, generate_all
from tests.integration.worker_expect import (
    OUTAGE,
    CdrLog,
    Expected,
    latest_alerts,
    live_alerts,
    outage_problems,
    rules_of,
    set_form_outages,
    signal_differences,
)
from tests.integration.worker_harness import (
    Probe,
    WorkerProcess,
    read_topic,
    wait_for,
)

START_US = parse_ts_us("2026-11-25T06:00:00Z")
FAULTS = Faults(duplicates=0.05, shuffle=0.3, late_recordings=0.3, malformed=0.01)
KNOBS = Knobs(outage_rate=0.15, stale_key=0.3, license_errors=0.02, dev_copy=0.05, extranet=0.05)
FAST_REBALANCE = {"BROKER_SESSION_TIMEOUT": "12", "BROKER_HEARTBEAT_INTERVAL": "2"}
CALLS = 3000
QUICK_ARCHIVE = {**FAST_REBALANCE, "CALLSTREAM_FORGET_AFTER": "1"}
# Events keep arriving for this long, so that a kill lands while the workers have work left:
# the whole topic takes a worker about a second, too short to kill it reliably in between.
PRODUCE_OVER_S = 8.0


@pytest.fixture(scope="module")
def simulated():
    return generate_all(53, CALLS, 10, START_US, faults=FAULTS, knobs=KNOBS)


@pytest.fixture
def rng() -> random.Random:
    seed = int.from_bytes(os.urandom(4), "big")
    print(f"kill timing seed: {seed}")  # shown with the failure, to replay the same moments
    return random.Random(seed)


@dataclass
class Outputs:
    """What one worker group left on its output topics."""

    log: CdrLog
    alerts: dict[str, dict]
    dlq: dict[tuple[int, int], dict]


def outputs_of(settings) -> Outputs:
    dlq = {}
    for record in read_topic(settings, settings.topic_dlq):
        doc = orjson.loads(record.value)
        dlq[(doc["partition"], doc["offset"])] = doc  # a re-processed reject may come twice
    return Outputs(CdrLog.of(read_topic(settings, settings.topic_cdrs)),
                   latest_alerts(read_topic(settings, settings.topic_alerts)), dlq)


def kill_when(settings, worker: WorkerProcess, emitted: int,
               others: list[WorkerProcess] | None = None) -> tuple[int, int]:
    """SIGKILL ``worker`` once the cdrs topic holds ``emitted`` messages (``others``: its peers).

    Returns (events the group had not committed, CDR messages at the kill).
    """
    probe = Probe(settings)
    try:
        def reached():
            worker.check()
            return probe.total(settings.topic_cdrs) >= emitted
        wait_for(reached, f"{emitted} CDR messages before the kill", timeout=120, every=0.05,
                 workers=(others or []) + [worker])
        worker.kill()
        worker.proc.wait(10)
        total = probe.total(settings.topic_cdrs)
        print(f"killed {worker.log_path.name} after {total} CDR messages")
        return probe.lag(settings.worker_group, settings.topic_events), total
    finally:
        probe.close()


def _places(events: list, calls: set[str]) -> str:
    """Where the events of ``calls`` are: per partition their count, first and last offset."""
    places: dict[int, list[int]] = {}
    for record in events:
        if record.key is not None and record.key.decode(errors="replace") in calls:
            places.setdefault(record.partition, []).append(record.offset)
    return "; ".join(f"{p}: {len(o)}, {min(o)}-{max(o)}" for p, o in sorted(places.items()))


def assert_like_reference(settings, got: Outputs, reference: Outputs, expected: Expected,
                           events: list) -> None:
    for run, outputs in (("reference", reference), ("killed run", got)):
        assert not outputs.log.problems, (run, outputs.log.problems[:10])
        latest = outputs.log.latest()
        missing, extra = expected.cdrs.keys() - latest.keys(), latest.keys() - expected.cdrs.keys()
        assert not missing and not extra, (run, f"{len(missing)} calls without a CDR, their events "
                                           "(partition: count, first and last offset):",
                                           _places(events, missing), f"{len(extra)} unexpected",
                                           sorted(extra)[:5])
        wrong = [c for c in latest if latest[c] != expected.cdrs[c]]
        assert not wrong, (run, len(wrong), latest[wrong[0]], expected.cdrs[wrong[0]])
        assert outputs.dlq == expected.dlq
        per_call = {i: a for i, a in outputs.alerts.items() if a["type"] != "controller_outage"}
        assert per_call == expected.alerts
        assert outage_problems(outputs.alerts, expected, rules_of(settings)) == []
    mine, theirs = got.log.latest(), reference.log.latest()
    assert mine == theirs
    # Spelled out: no call lost, none counted twice, no recording counted twice.
    assert len(mine) == len(theirs) == CALLS
    assert sum(c["events"] for c in mine.values()) == sum(c["events"] for c in theirs.values())
    assert sum(c["recording_bytes"] for c in mine.values()) == \
        sum(c["recording_bytes"] for c in theirs.values()) > 0
    mine_alerts, their_alerts = live_alerts(got.alerts), live_alerts(reference.alerts)
    assert {i for i in mine_alerts if not i.startswith(OUTAGE)} == \
        {i for i in their_alerts if not i.startswith(OUTAGE)}
    # Outage ids too: the rule is a function of the set of verdicts, not of arrival order.
    oracle = {i for i, a in set_form_outages(expected, rules_of(settings)).items()
              if a["detail"]["state"] != "retracted"}
    mine_outages = {i for i in mine_alerts if i.startswith(OUTAGE)}
    their_outages = {i for i in their_alerts if i.startswith(OUTAGE)}
    diverged = {i.split(":")[1] for i in (mine_outages ^ oracle) | (their_outages ^ oracle)}
    assert mine_outages == their_outages == oracle, {
        "signals unlike the set form (killed run)": signal_differences(
            read_topic(settings, internal_topic_names(settings)[1]), expected, diverged)[:20],
        "killed run, not in the set form": sorted(mine_outages - oracle),
        "killed run, missing": sorted(oracle - mine_outages),
        "reference, not in the set form": sorted(their_outages - oracle),
        "reference, missing": sorted(oracle - their_outages)}
    assert mine_alerts == their_alerts
