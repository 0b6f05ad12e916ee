"""The pipeline's pause while a broker of the three-node cluster is killed (``kill -9``).

    python bench/cluster_failover.py [--runs 3] [--rate 100] [--warmup 20] [--after 40]

Starts a three-node cluster of its own (``callstream broker start --nodes 3`` on
free ports, data under ``var/bench-cluster``; stopped at the end), then per run:
fresh topics, ``callstream worker`` and ``callstream simulate --rate R --calls 0``
(R calls per second, ~5.5 events each). After ``--warmup`` seconds of steady
output it kills the node that is both the quorum's active controller and the
leader of the events topic's partition 0 (reassigned so when needed), watches
for ``--after`` seconds, restarts the node, and stops the processes.

A probe samples the end offsets of ``call-events`` (what the simulator got
acknowledged) and ``cdrs`` (what the worker emitted) every 50 ms. Reported per
run: the longest stretch without a new event and without a new CDR in the
window around the kill (the pause the kill caused; in steady running these gaps
are a few hundred ms), and the seconds from the kill until the CDR rate is back
to half its pre-kill rate. Medians over the runs go to
``bench/results/cluster_failover.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.protocol.admin.topics import ElectionType

from common.config import SETTINGS, Settings
from common.kafka_clients import consumer_options
from streams import broker, topics
from streams.worker import worker_topics

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SAMPLE_S = 0.05


def free_base_port() -> int:
    """A port p with p .. p+5 free (three brokers and their controllers)."""
    for _ in range(200):
        base = random.randrange(20_000, 30_000, 2)
        try:
            for port in range(base, base + 6):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no six free ports in a row")


def env_of(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLSTREAM_")}
    env.update({s.env: str(getattr(settings, s.name)) for s in SETTINGS if getattr(settings, s.name) is not None})
    return env


class Probe(threading.Thread):
    """Samples (time, events end offset, cdrs end offset) every SAMPLE_S seconds."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.samples: list[tuple[float, int, int]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        consumer = KafkaConsumer(bootstrap_servers=self.settings.bootstrap, request_timeout_ms=5_000,
                                 **consumer_options(self.settings))
        try:
            parts = {t: [TopicPartition(t, p) for p in sorted(consumer.partitions_for_topic(t) or ())]
                     for t in (self.settings.topic_events, self.settings.topic_cdrs)}
            while not self.stopping.is_set():
                try:
                    ends = consumer.end_offsets(parts[self.settings.topic_events] + parts[self.settings.topic_cdrs])
                except Exception:  # noqa: BLE001 - a leader being elected: no sample this time
                    time.sleep(SAMPLE_S)
                    continue
                events = sum(v for tp, v in ends.items() if tp.topic == self.settings.topic_events)
                cdrs = sum(v for tp, v in ends.items() if tp.topic == self.settings.topic_cdrs)
                self.samples.append((time.monotonic(), events, cdrs))
                time.sleep(SAMPLE_S)
        finally:
            consumer.close()


def longest_gap(samples: list[tuple[float, int, int]], column: int, start: float, end: float) -> float:
    """Longest time in [start, end] during which the column's count did not grow."""
    last_change, gap, previous = start, 0.0, None
    for t, *counts in samples:
        if t < start - 5:
            continue
        if t > end:
            break
        value = counts[column]
        if previous is not None and value != previous:
            if t >= start:
                gap = max(gap, t - max(last_change, start))
            last_change = t
        previous = value
    return max(gap, min(end, samples[-1][0]) - max(last_change, start))


def recovery_s(samples: list[tuple[float, int, int]], killed_at: float) -> float | None:
    """Seconds from the kill until the CDR rate over 2 s is back to half the pre-kill rate."""
    before = [s for s in samples if killed_at - 10 <= s[0] <= killed_at]
    rate = (before[-1][2] - before[0][2]) / (before[-1][0] - before[0][0])
    window = 2.0
    for i, (t, _, cdrs) in enumerate(samples):
        if t <= killed_at:
            continue
        later = [s for s in samples[i:] if s[0] <= t + window]
        if later[-1][0] - t >= window * 0.9 and (later[-1][2] - cdrs) / (later[-1][0] - t) >= rate / 2:
            return t - killed_at
    return None


def lead_from_controller(settings: Settings) -> int:
    """Make the active controller lead the events topic's partition 0; its node id."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, request_timeout_ms=30_000)
    try:
        controller = admin.describe_metadata_quorum()["topics"][0]["partitions"][0]["leader_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            partitions = admin.describe_topics([settings.topic_events])[0]["partitions"]
            zero = next((p for p in partitions if p["partition_index"] == 0), None)
            if zero and zero["leader_id"] == controller:
                return controller
            if zero and zero["replica_nodes"][0] != controller:
                others = [n for n in zero["replica_nodes"] if n != controller]
                admin.alter_partition_reassignments({TopicPartition(settings.topic_events, 0): [controller, *others]})
            elif zero:
                admin.elect_leaders(ElectionType.PREFERRED, {settings.topic_events: [0]}, raise_errors=False)
            time.sleep(1)
        raise RuntimeError("the controller did not become the leader of partition 0")
    finally:
        admin.close()


def one_run(cluster: Settings, args, run: int) -> dict:
    unique = f"failover-{uuid.uuid4().hex[:8]}"
    settings = cluster.replace(topic_events=f"{unique}-events", topic_cdrs=f"{unique}-cdrs",
                               topic_alerts=f"{unique}-alerts", topic_dlq=f"{unique}-dlq",
                               worker_group=f"{unique}-worker", state_dir=str(ROOT / "var" / "bench" / unique))
    topics.ensure_topics(settings, worker_topics(settings))
    victim = lead_from_controller(settings)
    logs = ROOT / "var" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for name, command in (("worker", ["worker"]),
                          ("simulate", ["simulate", "--rate", str(args.rate), "--calls", "0", "--seed", str(run)])):
        with open(logs / f"{unique}-{name}.log", "wb") as out:
            processes.append(subprocess.Popen([sys.executable, "-m", "callstream.cli", *command],
                                              env=env_of(settings), stdout=out, stderr=subprocess.STDOUT,
                                              start_new_session=True))
    probe = Probe(settings)
    try:
        time.sleep(5)  # the topics' metadata, then the probe
        probe.start()
        while not probe.samples or probe.samples[-1][2] == 0:
            time.sleep(0.5)
        time.sleep(args.warmup)
        node = next(n for n, _ in broker.node_status(cluster) if n.node_id == victim)
        os.killpg(broker.read_pid(node.paths), signal.SIGKILL)
        killed_at = time.monotonic()
        time.sleep(args.after)
        broker.start_nodes(cluster, timeout_s=180)
    finally:
        probe.stopping.set()
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        probe.join(10)
    samples = probe.samples
    steady = [longest_gap(samples, 1, killed_at - args.warmup + 5, killed_at - 1)]
    result = {"victim": victim, "events_pause_s": longest_gap(samples, 0, killed_at - 1, killed_at + args.after),
              "cdrs_pause_s": longest_gap(samples, 1, killed_at - 1, killed_at + args.after),
              "cdrs_steady_gap_s": steady[0], "recovery_s": recovery_s(samples, killed_at)}
    print(f"run {run + 1}: killed node {victim}: events paused {result['events_pause_s']:.1f} s, "
          f"CDRs paused {result['cdrs_pause_s']:.1f} s (steady gaps ≤ {steady[0]:.2f} s), "
          f"CDR rate back to half after {result['recovery_s']} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=100, help="calls per second from the simulator")
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--after", type=float, default=40.0)
    args = parser.parse_args()
    cluster = Settings.from_env({}, bootstrap=f"127.0.0.1:{free_base_port()}", kafka_nodes=3,
                                kafka_dir=str(ROOT / "var" / "bench-cluster" / uuid.uuid4().hex[:8]))
    broker.start_nodes(cluster, timeout_s=180)
    try:
        cluster = cluster.replace(bootstrap=broker.cluster_bootstrap(cluster))
        runs = [one_run(cluster, args, n) for n in range(args.runs)]
    finally:
        broker.stop(cluster)
    summary = {key: statistics.median(r[key] for r in runs if r[key] is not None)
               for key in ("events_pause_s", "cdrs_pause_s", "cdrs_steady_gap_s", "recovery_s")
               if any(r[key] is not None for r in runs)}
    result = {"runs": runs, "median": summary, "rate_calls_per_s": args.rate,
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cluster_failover.json").write_text(json.dumps(result, indent=2))
    print("median: " + ", ".join(f"{k} {v:.1f}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
