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

from callstream.config import Settings
from callstream.kafka_clients import ISOLATION_LEVEL
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

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_worker(settings: Settings, events_topic: str, tag: str, *extra_env: tuple[str, str]) -> WorkerRun:
    """A `callstream worker` process with its own group, output topics and state dir."""
    unique = f"{tag}-{uuid.uuid4().hex[:8]}"
    run_settings = settings.replace(
        topic_events=events_topic, topic_cdrs=f"{unique}-cdrs", topic_alerts=f"{unique}-alerts",
        topic_dlq=f"{unique}-dlq", worker_group=f"{unique}-worker",
        state_dir=str(ROOT / "var" / "bench" / unique))
    topics.ensure_topics(run_settings, worker_topics(run_settings))
    return _spawn(run_settings, unique, dict(extra_env))


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
