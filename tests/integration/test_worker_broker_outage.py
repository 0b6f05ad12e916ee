"""The broker goes away for ~10 s while the simulator produces and the worker consumes.

This test starts a broker of its own (free ports, data in ``tmp_path``) so that
stopping it disturbs nobody. The simulator runs as ``callstream simulate
--rate``; once the worker has emitted its first CDRs the broker is stopped,
left down for 10 s and started again. Whatever the simulator managed to store
in the events topic, the worker's final outputs must be exactly what the pure
core derives from it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from streams import broker, topics
from tests.integration.ports import free_port_pair
from tests.integration.worker_expect import CdrLog, expect, latest_alerts, outage_problems, rules_of
from tests.integration.worker_harness import Fleet, Probe, read_topic, settings_env, wait_for, wait_until_done

pytestmark = [pytest.mark.integration, pytest.mark.alone]  # kills or times processes: nothing beside it

SIMULATE = ("--rate", "50", "--calls", "1500", "--seed", "17", "--portals", "10",
            "--duplicates", "0.05", "--shuffle", "0.3", "--malformed", "0.01", "--outage-rate", "0.15")
OUTAGE_S = 10


@pytest.fixture
def own_broker(kafka_settings, tmp_path):
    """Settings for a broker of this test's own, started here and always stopped afterwards."""
    settings = kafka_settings.replace(bootstrap=f"127.0.0.1:{free_port_pair()}",
                                      kafka_dir=str(tmp_path / "kafka"),
                                      state_dir=str(tmp_path / "worker-state"),
                                      worker_group="outage-worker")
    try:
        broker.start(settings)
        topics.ensure_topics(settings, topics.project_topics(settings))
        yield settings
    finally:
        leftover = _our_broker_pid(settings)  # read first: stop() deletes the pid file
        if not broker.stop(settings) and leftover is not None:
            try:
                os.killpg(leftover, signal.SIGKILL)  # broker.start gave it a session of its own
            except ProcessLookupError:
                pass


def _our_broker_pid(settings) -> int | None:
    """The pid in this test's broker pid file, if that process runs this test's broker."""
    root = Path(settings.kafka_dir).resolve()
    try:
        pid = int(broker.BrokerPaths(root).pid_file.read_text().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return pid if str(root).encode() in cmdline.read() else None
    except (FileNotFoundError, ValueError):
        return None


def test_broker_stopped_and_restarted_mid_run(own_broker, tmp_path):
    settings = own_broker
    sim_log = tmp_path / "simulate.log"
    with Fleet(tmp_path) as fleet, open(sim_log, "wb") as out:
        worker = fleet.start(settings, "worker")
        sim = subprocess.Popen([sys.executable, "-m", "callstream.cli", "simulate", *SIMULATE],
                               env=settings_env(settings), stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
        try:
            _wait_first_cdrs(settings, worker)
            broker.stop(settings)
            time.sleep(OUTAGE_S)  # the outage itself, not a wait for something
            broker.start(settings)
            sim_code = sim.wait(timeout=180)
        finally:
            if sim.poll() is None:
                sim.kill()
                sim.wait(10)
        wait_until_done(settings, [worker], timeout=180)
        events = read_topic(settings, settings.topic_events)
        log = CdrLog.of(read_topic(settings, settings.topic_cdrs))
        alerts = latest_alerts(read_topic(settings, settings.topic_alerts))
        dlq = {(d["partition"], d["offset"]): d for d in
               (orjson.loads(r.value) for r in read_topic(settings, settings.topic_dlq))}
    expected = expect(events, settings)
    assert len(expected.cdrs) > 1000
    assert not log.problems, log.problems[:10]
    latest = log.latest()
    assert latest.keys() == expected.cdrs.keys()
    wrong = [c for c in latest if latest[c] != expected.cdrs[c]]
    assert not wrong, (len(wrong), latest[wrong[0]], expected.cdrs[wrong[0]])
    assert dlq == expected.dlq
    assert {i: a for i, a in alerts.items() if a["type"] != "controller_outage"} == expected.alerts
    assert outage_problems(alerts, expected, rules_of(settings)) == []
    # Last: the simulator itself should ride out a 10 s outage (its producer retries).
    assert sim_code == 0, sim_log.read_text()[-2000:]


def _wait_first_cdrs(settings, worker) -> None:
    probe = Probe(settings)
    try:
        wait_for(lambda: worker.check() or probe.total(settings.topic_cdrs) > 0,
                 "the worker's first CDRs", timeout=90)
    finally:
        probe.close()
