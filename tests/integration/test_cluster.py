"""The pipeline on a three-node Kafka cluster, with one broker killed (``kill -9``) mid-run.

The module starts its own cluster (``callstream broker start --nodes 3`` through
``streams.broker``: three JVMs on free loopback ports, data in a temporary
directory) and always stops it: the shared broker on 9092 is never touched.
Each test runs the simulator (``callstream simulate --rate``), a worker and a
sink as subprocesses on their own topics, kills the broker that leads the
events topic's partition 0 — made the active controller of the quorum too —
while events arrive, and then:

- restarts it after a while: the latest CDR of every call, the alerts and the
  DLQ are what the pure core derives from the stored events (an uninterrupted
  run), and the warehouse equals a ``callstream rebuild`` of the event log
  (``EXCEPT ALL`` both ways, every table), which is what an uninterrupted run
  leaves;
- leaves it dead: the pipeline carries on with two brokers to the same end.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from common.config import Settings
from streams import broker, topics
from tests.integration.sink_data import table_differences
from tests.integration.worker_expect import CdrLog, expect, latest_alerts, outage_problems, rules_of
from tests.integration.worker_harness import (
    Fleet,
    Probe,
    delete_test_topics,
    read_topic,
    settings_env,
    split_between,
    wait_for,
    wait_until_done,
)
from warehouse.layout import load_manifest

pytestmark = [pytest.mark.integration, pytest.mark.alone]  # kills or times processes: nothing beside it

NODES = 3
SIMULATE = ("--rate", "40", "--calls", "800", "--seed", "29", "--portals", "8", "--duplicates", "0.05",
            "--shuffle", "0.3", "--late-recordings", "0.2", "--malformed", "0.01", "--outage-rate", "0.15")
DEAD_S = 8  # how long the killed broker stays down before the restart
TABLES = ("cdrs", "alerts", "events", "dlq", "cdrs_daily")


def _free_base_port() -> int:
    """A port p with p .. p+5 free: three brokers and their controllers (streams.broker_nodes)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, 30_000, 2)
        sockets = []
        try:
            for port in range(base, base + 2 * NODES):
                probe = socket.socket()
                sockets.append(probe)
                probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for probe in sockets:
                probe.close()
    raise RuntimeError("no six free ports in a row")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Settings:
    """Settings for a three-node cluster of this module's own; stopped (and, failing that, killed) at the end."""
    root = tmp_path_factory.mktemp("cluster")
    settings = Settings.from_env({}, bootstrap=f"127.0.0.1:{_free_base_port()}", kafka_nodes=NODES,
                                 kafka_dir=str(root / "kafka"))
    try:
        assert len(broker.start_nodes(settings, timeout_s=180)) == NODES
        yield settings.replace(bootstrap=broker.cluster_bootstrap(settings))
    finally:
        pids = [pid for _, pid in broker.node_status(settings) if pid is not None]
        if not broker.stop(settings):
            for pid in pids:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture
def cluster_settings(cluster: Settings, tmp_path: Path):
    """The cluster, every node running, with this test's own topics, groups, state and warehouse."""
    broker.start_nodes(cluster, timeout_s=180)
    unique = os.urandom(5).hex()
    settings = cluster.replace(
        topic_events=f"c{unique}-call-events", topic_dlq=f"c{unique}-call-events-dlq",
        topic_cdrs=f"c{unique}-cdrs", topic_alerts=f"c{unique}-alerts",
        worker_group=f"c{unique}-worker", sink_group=f"c{unique}-sink",
        state_dir=str(tmp_path / "worker-state"), warehouse=str(tmp_path / "warehouse"))
    yield settings
    broker.start_nodes(cluster, timeout_s=180)
    delete_test_topics(settings, f"c{unique}")


def test_topics_internal_ones_included_have_three_replicas_and_min_isr_two(cluster_settings):
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    from streams.worker import worker_topics

    settings = cluster_settings
    created = subprocess.run([sys.executable, "-m", "callstream.cli", "topics", "create"],
                             env=settings_env(settings), capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    specs = worker_topics(settings)  # the worker's own topics come from the same place
    topics.ensure_topics(settings, specs)
    names = [spec.name for spec in specs]
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, request_timeout_ms=30_000)
    try:
        # A new topic reaches every broker's metadata a moment after its creation.
        replicas = wait_for(lambda: _replicas(admin, names), "the new topics in the metadata", timeout=60)
        assert replicas == {name: {3} for name in names}
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
        assert {n: c["min.insync.replicas"]["value"] for n, c in configs["topic"].items()} == \
            {n: "2" for n in names}
        # Internal topics are created on first use (the pipeline tests check __consumer_offsets).
        node = ConfigResource(ConfigResourceType.BROKER, "1")
        config = {k: v["value"] for k, v in admin.describe_configs([node], config_filter="all")["broker"]["1"].items()}
        for key, value in (("offsets.topic.replication.factor", "3"), ("min.insync.replicas", "2"),
                           ("transaction.state.log.replication.factor", "3"),
                           ("transaction.state.log.min.isr", "2"), ("default.replication.factor", "3"),
                           ("unclean.leader.election.enable", "false")):
            assert config[key] == value, key
    finally:
        admin.close()


def _replicas(admin, names: list[str]) -> dict[str, set[int]] | None:
    """Replica counts per partition of each topic, or None while one is not fully described."""
    described = {t["name"]: t for t in admin.describe_topics(names)}
    if set(described) != set(names) or any(not t["partitions"] for t in described.values()):
        return None
    return {name: {len(p["replica_nodes"]) for p in t["partitions"]} for name, t in described.items()}


def test_a_broker_killed_mid_run_then_restarted_leaves_what_an_uninterrupted_run_leaves(cluster_settings,
                                                                                        tmp_path):
    settings = cluster_settings
    outputs = _run(settings, tmp_path, restart_after_s=DEAD_S)
    rebuilt = tmp_path / "rebuilt"
    done = subprocess.run([sys.executable, "-m", "callstream.cli", "rebuild", "--to", str(rebuilt),
                           "--no-progress"], env=settings_env(settings), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    for table in TABLES:
        assert table_differences(Path(settings.warehouse), rebuilt, table) == (0, 0), table
    assert outputs > 500


def test_the_pipeline_carries_on_with_two_brokers(cluster_settings, tmp_path):
    assert _run(cluster_settings, tmp_path, restart_after_s=None) > 500


def _run(settings: Settings, tmp_path: Path, *, restart_after_s: float | None) -> int:
    """Simulator, worker and sink; a broker killed mid-run (restarted after ``restart_after_s``).

    Checks every output against the pure core's; returns the number of calls.
    """
    topics.ensure_topics(settings, topics.project_topics(settings))
    victim = _lead_events_partition_zero_from_the_controller(settings)
    with Fleet(tmp_path) as fleet, open(tmp_path / "simulate.log", "wb") as sim_out, \
            open(tmp_path / "sink.log", "wb") as sink_out:
        worker = fleet.start(settings, "worker")
        sink = _start(settings, sink_out, "sink", "--flush-interval", "0.2")
        started = [sink]
        probe = Probe(settings)
        try:
            # Events start once the worker holds its partitions, so the kill lands mid-run.
            wait_for(lambda: worker.check() or _holds_all(probe, settings),
                     "the worker holding every partition", timeout=120, workers=[worker])
            sim = _start(settings, sim_out, "simulate", *SIMULATE)
            started.append(sim)
            wait_for(lambda: worker.check() or probe.total(settings.topic_cdrs) > 100,
                     "the worker's first 100 CDRs", timeout=120, workers=[worker])
            assert sim.poll() is None, "the simulator finished before the kill: nothing was tested"
            _kill_node(settings, victim)
            if restart_after_s is not None:
                time.sleep(restart_after_s)  # the outage itself, not a wait for something
                broker.start_nodes(settings, timeout_s=180)
            assert sim.wait(timeout=240) == 0, (tmp_path / "simulate.log").read_text()[-2000:]
            wait_until_done(settings, [worker], timeout=240)
            _wait_sink_caught_up(settings, sink)
        finally:
            probe.close()
            for process in started:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(30)
        assert sink.returncode == 0, (tmp_path / "sink.log").read_text()[-2000:]
        events = read_topic(settings, settings.topic_events)
        log = CdrLog.of(read_topic(settings, settings.topic_cdrs))
        alerts = latest_alerts(read_topic(settings, settings.topic_alerts))
        dlq = {(d["partition"], d["offset"]): d for d in
               (orjson.loads(r.value) for r in read_topic(settings, settings.topic_dlq))}
    expected = expect(events, settings)
    assert not log.problems, log.problems[:10]
    latest = log.latest()
    assert latest.keys() == expected.cdrs.keys()
    wrong = [c for c in latest if latest[c] != expected.cdrs[c]]
    assert not wrong, (len(wrong), latest[wrong[0]], expected.cdrs[wrong[0]])
    assert dlq == expected.dlq  # nothing on the DLQ that should not be, nothing missing
    assert {i: a for i, a in alerts.items() if a["type"] != "controller_outage"} == expected.alerts
    assert outage_problems(alerts, expected, rules_of(settings)) == []
    probe = Probe(settings)
    try:  # the worker's and the sink's groups committed through the replicated offsets topic
        assert _replicas(probe.admin, ["__consumer_offsets"]) == {"__consumer_offsets": {3}}
    finally:
        probe.close()
    return len(latest)


def _holds_all(probe: Probe, settings: Settings) -> bool:
    from kafka.errors import KafkaError

    try:
        return split_between(probe, settings, 1)
    except KafkaError:  # the group's coordinator is not there yet (offsets topic being created)
        return False


def _start(settings: Settings, out, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "callstream.cli", *args], env=settings_env(settings),
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _lead_events_partition_zero_from_the_controller(settings: Settings) -> int:
    """Make the quorum's active controller the leader of the events topic's partition 0; its node id.

    Killing that one node then takes away a partition leader and the controller at once.
    """
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.protocol.admin.topics import ElectionType

    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, request_timeout_ms=30_000)
    try:
        controller = admin.describe_metadata_quorum()["topics"][0]["partitions"][0]["leader_id"]
        tp = TopicPartition(settings.topic_events, 0)

        def partition() -> dict | None:
            return next((p for p in admin.describe_topics([tp.topic])[0]["partitions"]
                         if p["partition_index"] == 0), None)

        def led_by_controller() -> bool:
            if (partition() or {}).get("leader_id") == controller:
                return True
            admin.elect_leaders(ElectionType.PREFERRED, {tp.topic: [0]}, raise_errors=False)
            return False
        first = wait_for(partition, f"{tp.topic} in the metadata", timeout=60)  # created a moment ago
        if first["leader_id"] != controller:
            others = [n for n in range(1, NODES + 1) if n != controller]
            assert admin.alter_partition_reassignments({tp: [controller, *others]}).get(tp) is None
            # A node whose metadata lags may describe the topic without partition 0 for a moment.
            wait_for(lambda: ((partition() or {}).get("replica_nodes") or [None])[0] == controller,
                     "the reassignment", timeout=60)
            wait_for(led_by_controller, "the controller leading partition 0", timeout=60, every=1.0)
        print(f"node {controller}: active controller and leader of {tp.topic}/0")
        return controller
    finally:
        admin.close()


def _kill_node(settings: Settings, node_id: int) -> None:
    """``kill -9`` one node of the cluster (its JVM leads a session of its own)."""
    node = next(n for n, _ in broker.node_status(settings) if n.node_id == node_id)
    pid = broker.read_pid(node.paths)
    assert pid is not None, f"node {node_id} is not running"
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: broker.read_pid(node.paths) is None, f"node {node_id} to die", timeout=30)


def _wait_sink_caught_up(settings: Settings, sink: subprocess.Popen) -> None:
    probe = Probe(settings)
    names = (settings.topic_events, settings.topic_cdrs, settings.topic_alerts, settings.topic_dlq)
    try:
        def caught_up() -> bool:
            assert sink.poll() is None, "the sink exited"
            manifest = load_manifest(Path(settings.warehouse))
            return manifest is not None and all(
                manifest.offsets.get(t, {}).get(tp.partition, 0) >= end
                for t in names for tp, end in probe.end_offsets(t).items())
        wait_for(caught_up, "the sink to catch up", timeout=120)
    finally:
        probe.close()
