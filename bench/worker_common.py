"""Shared pieces of the worker benchmarks: topics, a pre-filled events topic, worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from common.config import Settings
from common.kafka_clients import ISOLATION_LEVEL
from streams import broker, topics
from streams.worker import worker_topics

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def base_settings() -> Settings:
    settings = Settings.from_env()
    if not broker.answers_metadata(settings):
        sys.exit(f"no Kafka broker answers at {settings.bootstrap}: run `callstream broker start`")
    return settings


def end_offsets(settings: Settings, topic: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, isolation_level=ISOLATION_LEVEL)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return consumer.end_offsets(tps) if tps else {}
    finally:
        consumer.close()


def prefilled_events(settings: Settings, calls: int, seed: int, extra: list[str] = ()) -> str:
    """A call-events topic holding the simulator's `calls` calls (reused when already full)."""
    name = f"bench-events-s{seed}-c{calls}" + ("-" + "-".join(a.strip("-") for a in extra) if extra else "")
    name = name.replace("=", "").replace(".", "")
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap)
    try:
        exists = name in admin.list_topics()
    finally:
        admin.close()
    filled = exists and sum(end_offsets(settings, name).values()) > 0
    if not filled:
        env = dict(os.environ, CALLSTREAM_TOPIC_EVENTS=name)
        topics.ensure_topics(settings.replace(topic_events=name), topics.project_topics(
            settings.replace(topic_events=name))[:1])
        subprocess.run([sys.executable, "-m", "callstream.cli", "simulate", "--calls", str(calls),
                        "--seed", str(seed), "--start", "2026-11-02T06:00:00Z", *extra],
                       env=env, check=True)
    return name


@dataclass
class WorkerRun:
    settings: Settings
    process: subprocess.Popen
    log: Path
    prefix: str = ""  # every topic and group of this run starts with it (see delete_topics)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def unique_settings(settings: Settings, tag: str, events_topic: str | None = None) -> tuple[str, Settings]:
    """(prefix, settings) whose output topics, group and state dir start with a fresh prefix.

    ``events_topic`` None: an events topic of the run's own, under the prefix too.
    """
    unique = f"{tag}-{uuid.uuid4().hex[:8]}"
    return unique, settings.replace(
        topic_events=events_topic or f"{unique}-events", topic_cdrs=f"{unique}-cdrs",
        topic_alerts=f"{unique}-alerts", topic_dlq=f"{unique}-dlq", worker_group=f"{unique}-worker",
        sink_group=f"{unique}-sink", state_dir=str(ROOT / "var" / "bench" / unique),
        warehouse=str(ROOT / "var" / "bench" / f"{unique}-warehouse"))


def start_worker(settings: Settings, events_topic: str | None, tag: str,
                 *extra_env: tuple[str, str]) -> WorkerRun:
    """A `callstream worker` process with its own group, output topics and state dir.

    ``events_topic`` None: on a fresh, empty events topic of its own.
    """
    unique, run_settings = unique_settings(settings, tag, events_topic)
    topics.ensure_topics(run_settings, worker_topics(run_settings))
    run = _spawn(run_settings, unique, dict(extra_env))
    run.prefix = unique
    return run


def start_prepared(unique: str, run_settings: Settings, *extra_env: tuple[str, str]) -> WorkerRun:
    """A worker on ``run_settings`` from :func:`unique_settings`, its topics already created."""
    run = _spawn(run_settings, unique, dict(extra_env))
    run.prefix = unique
    return run


def wait_members(runs: list[WorkerRun], timeout_s: float = 600) -> float:
    """Seconds until the workers' group is stable with every one of ``runs`` in it."""
    settings = runs[0].settings
    lags = Lags(settings)
    began = time.time()
    try:
        while time.time() - began < timeout_s:
            for one in runs:
                if one.process.poll() is not None:
                    raise RuntimeError(f"worker exited {one.process.returncode}; see {one.log}")
            if lags.stable_members(settings.worker_group) == len(runs):
                return time.time() - began
            time.sleep(0.5)
    finally:
        lags.close()
    raise TimeoutError(f"{len(runs)} workers did not form a group within {timeout_s} s; see {runs[0].log}")


def join_worker(run: WorkerRun, index: int, *extra_env: tuple[str, str]) -> WorkerRun:
    """One more `callstream worker` in ``run``'s group and topics, with a state dir of its own."""
    unique = f"{Path(run.settings.state_dir).name}-{index}"
    return _spawn(run.settings.replace(state_dir=str(ROOT / "var" / "bench" / unique)), unique,
                  dict(extra_env))


def _spawn(settings: Settings, unique: str, extra_env: dict[str, str]) -> WorkerRun:
    """A worker process configured by ``settings`` (topics, group, state dir) through its environment."""
    env = dict(os.environ, CALLSTREAM_TOPIC_EVENTS=settings.topic_events,
               CALLSTREAM_TOPIC_CDRS=settings.topic_cdrs, CALLSTREAM_TOPIC_ALERTS=settings.topic_alerts,
               CALLSTREAM_TOPIC_DLQ=settings.topic_dlq, CALLSTREAM_WORKER_GROUP=settings.worker_group,
               CALLSTREAM_STATE_DIR=settings.state_dir, **extra_env)
    log = ROOT / "var" / "bench" / f"{unique}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "callstream.cli", "worker"], env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return WorkerRun(settings, process, log)


def committed(settings: Settings, group: str, topic: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def wait_caught_up(run: WorkerRun | list[WorkerRun], total: int,
                   timeout_s: float = 1800) -> tuple[tuple, tuple]:
    """(wall time, events committed, workers' CPU seconds) at the first commit and at `total`.

    ``run`` is one worker or the workers of one group. The CPU seconds let a
    figure be normalised to one core's work when the machine is shared (other
    processes stretch wall time, not CPU time).
    """
    runs = run if isinstance(run, list) else [run]
    settings = runs[0].settings
    first = None
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for one in runs:
            if one.process.poll() is not None:
                raise RuntimeError(f"worker exited {one.process.returncode}; see {one.log}")
        done = committed(settings, settings.worker_group, settings.topic_events)
        now, cpu = time.time(), sum(cpu_seconds(one.process.pid) for one in runs)
        if done > 0 and first is None:
            first = (now, done, cpu)
        if done >= total:
            return first, (now, done, cpu)
        time.sleep(0.5)
    raise TimeoutError(f"workers did not catch up within {timeout_s} s; see {runs[0].log}")


def wait_quiet(runs: list[WorkerRun], idle_cores: float = 0.05, window_s: float = 2.0,
               timeout_s: float = 120) -> tuple[float, float]:
    """(wall time, workers' CPU seconds) once the workers have gone quiet after catching up.

    Work that lags the commits — a standby replaying its peers' changelogs, the
    last changelog flushes — costs CPU after the group's commits reached the
    end; it belongs to the events all the same. Quiet: over ``window_s`` the
    workers together used less than ``idle_cores`` per worker.
    """
    samples = [(time.time(), sum(cpu_seconds(one.process.pid) for one in runs))]
    deadline = samples[0][0] + timeout_s
    while time.time() < deadline:
        time.sleep(0.5)
        samples.append((time.time(), sum(cpu_seconds(one.process.pid) for one in runs)))
        old = [s for s in samples if s[0] <= samples[-1][0] - window_s]
        if old and (samples[-1][1] - old[-1][1]) / (samples[-1][0] - old[-1][0]) < idle_cores * len(runs):
            return old[-1]  # quiet since then
    return samples[-1]


# ---------------------------------------------------------------- memory, lag, topics

MIB = 1_048_576


def rss_mib(pid: int) -> float:
    """Resident set size of a process and its children, MiB (0 once it is gone)."""
    try:
        process = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / MIB
    except psutil.NoSuchProcess:
        return 0.0


def peak_rss_mib(pid: int) -> float:
    """The process's high-water resident set size (VmHWM), MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def reset_peak_rss(pid: int) -> None:
    """Start the process's VmHWM again from its current RSS (Linux: clear_refs 5)."""
    with open(f"/proc/{pid}/clear_refs", "w") as refs:
        refs.write("5")


class Lags:
    """Repeated looks at a group's lag: end offsets minus committed offsets, per topic."""

    def __init__(self, settings: Settings) -> None:
        self.admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, request_timeout_ms=15_000)
        self.consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False,
                                      isolation_level=ISOLATION_LEVEL)

    def close(self) -> None:
        self.admin.close()
        self.consumer.close()

    def end(self, topic: str) -> int:
        """Messages in ``topic`` so far (the sum of its end offsets)."""
        parts = self.consumer.partitions_for_topic(topic) or ()
        return sum(self.consumer.end_offsets([TopicPartition(topic, p) for p in parts]).values())

    def lag(self, group: str, topic: str) -> int:
        """Messages of ``topic`` the group has not committed (a partition without a commit: all)."""
        committed = self.admin.list_group_offsets(group).get(group, {})
        parts = [TopicPartition(topic, p) for p in self.consumer.partitions_for_topic(topic) or ()]
        behind = 0
        for tp, end in self.consumer.end_offsets(parts).items():
            done = committed.get(tp)
            behind += end - (done.offset if done is not None and done.offset >= 0 else 0)
        return behind

    def stable_members(self, group: str) -> int:
        """Members of the group once it is stable (0 while it forms or rebalances, or while a
        fresh cluster is still electing the group's coordinator: a retriable error)."""
        try:
            described = self.admin.describe_groups([group])[group]
        except KafkaError as exc:
            if getattr(exc, "retriable", False):
                return 0
            raise
        return len(described.get("members") or []) if described.get("group_state") == "Stable" else 0


def read_topic(settings: Settings, topic: str, timeout_s: float = 300) -> list:
    """Every committed record of ``topic`` up to its current end."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False,
                             isolation_level=ISOLATION_LEVEL, fetch_max_bytes=64 * MIB,
                             max_partition_fetch_bytes=16 * MIB)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        records: list = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end")
            for tp, batch in consumer.poll(timeout_ms=500, max_records=50_000).items():
                records.extend(r for r in batch if r.offset < ends[tp])
        return records
    finally:
        consumer.close()


def delete_topics(settings: Settings, prefix: str) -> list[str]:
    """Delete every topic whose name starts with ``prefix`` (a run's own, internal ones too)."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, request_timeout_ms=30_000)
    try:
        names = [name for name in admin.list_topics() if name.startswith(prefix)]
        if names:
            admin.delete_topics(names)
        return names
    finally:
        admin.close()


def exit_on_sigterm() -> None:
    """SIGTERM ends the benchmark like Ctrl-C: its cleanup (workers, topics) still runs."""
    import signal

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
