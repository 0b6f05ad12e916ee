"""Helpers for the worker's integration tests: worker processes and Kafka.

- :class:`Fleet` runs ``callstream worker`` subprocesses (own session, log file
  each), kills them on exit and prints their log tails when a test fails;
- :func:`produce`, :func:`read_topic`, :func:`wait_until_done` talk to Kafka
  with kafka-python (never through the worker's code).

What the outputs must be is computed in :mod:`tests.integration.worker_expect`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from common.config import SETTINGS, Settings

MAX_REQUEST_BYTES = 4 * 1024 * 1024  # room for the simulator's over-1-MiB messages
PACED_SLICES = 20
# Log lines after which a worker never gets anywhere: fail at once instead of at the deadline.
# The tests only ever SIGKILL a worker (which logs nothing): a logged signal came from
# outside the test (a broad pkill on a shared machine), and the worker is shutting down.
FATAL_MARKS = ("Error in recovery", "[CRITICAL]", "[^Worker]: Signal received")


# ---------------------------------------------------------------- processes

def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that hands ``settings`` (every field) to a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLSTREAM_")}
    for setting in SETTINGS:
        value = getattr(settings, setting.name)
        if value is not None:
            env[setting.env] = str(value)
    env.update(extra)
    return env


class WorkerProcess:
    """One ``callstream worker`` subprocess with its log file."""

    def __init__(self, settings: Settings, log_path: Path, args: tuple[str, ...], env: dict) -> None:
        self.settings = settings
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self._scanned, self._fatal = 0, None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "callstream.cli", "worker", *args], env=env,
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to this worker's own process group (it leads a new session)."""
        if self.alive:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then SIGKILL when it does not exit in time; returns the exit code."""
        self.kill(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.proc.wait(10)
        return self.proc.returncode

    def close(self) -> None:
        self.kill(signal.SIGKILL)
        try:
            self.proc.wait(10)
        finally:
            self._log.close()

    def fatal_line(self, marks: tuple[str, ...] = FATAL_MARKS) -> str | None:
        """The first log line carrying one of ``marks``, if any (the log is read once, incrementally)."""
        if self._fatal is None:
            with open(self.log_path, "rb") as log:
                log.seek(self._scanned)
                for raw in log:
                    if not raw.endswith(b"\n"):
                        break  # a line still being written: read it next time
                    self._scanned += len(raw)
                    line = raw.decode("utf-8", "replace")
                    if any(mark in line for mark in marks):
                        self._fatal = line.strip()
                        break
        return self._fatal

    def check(self, marks: tuple[str, ...] = FATAL_MARKS) -> None:
        """Fail when the worker exited or logged a fatal line."""
        assert self.alive, f"{self.log_path.name} exited with {self.proc.returncode}:\n{self.tail()}"
        fatal = self.fatal_line(marks) if marks else None
        assert fatal is None, f"{self.log_path.name}: {fatal}\n{self.tail(10)}"

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_bytes().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])


class Fleet:
    """The worker processes of one test: always killed on exit, log tails printed on failure."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.workers: list[WorkerProcess] = []

    def start(self, settings: Settings, name: str, *args: str, **env: str) -> WorkerProcess:
        """Start a worker named ``name`` (log ``<name>.log``) configured by ``settings`` + ``env``.

        Logs at info level unless ``args`` say otherwise: rebalances, recovery and
        signals then show in the tail printed on failure.
        """
        if "--log-level" not in args:
            args = (*args, "--log-level", "info")
        worker = WorkerProcess(settings, self.tmp_path / f"{name}.log", args,
                               settings_env(settings, **env))
        self.workers.append(worker)
        return worker

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for worker in self.workers:
            worker.close()
        if exc_type is not None:
            for worker in self.workers:
                print(f"----- {worker.log_path.name} (exit {worker.proc.returncode}) -----")
                print(worker.tail())


@pytest.fixture
def worker_settings(pipeline_settings: Settings, unique: str):
    """``pipeline_settings`` whose topics, the worker's internal ones included, go afterwards."""
    yield pipeline_settings
    delete_test_topics(pipeline_settings, f"t{unique}")


# ---------------------------------------------------------------- Kafka

def _client_options(settings: Settings) -> dict[str, Any]:
    return {"bootstrap_servers": settings.bootstrap, **settings.kafka_client_options()}


def produce(settings: Settings, messages: Iterable[tuple[bytes | None, bytes | None]],
            topic: str | None = None, over_s: float = 0.0) -> int:
    """Send (key, value) pairs in order (default partitioner: murmur2 of the key); returns the count.

    ``over_s``: spread the sending over that many seconds (twenty equal slices).
    """
    from kafka import KafkaProducer

    producer = KafkaProducer(acks="all", linger_ms=20, batch_size=512 * 1024,
                             max_request_size=MAX_REQUEST_BYTES, enable_idempotence=True,
                             **_client_options(settings))
    messages = list(messages)
    slice_size = max(1, -(-len(messages) // PACED_SLICES)) if over_s else max(1, len(messages))
    count = 0
    try:
        futures = []
        for start in range(0, len(messages), slice_size):
            if start:
                producer.flush(120)
                time.sleep(over_s / PACED_SLICES)
            for key, value in messages[start:start + slice_size]:
                futures.append(producer.send(topic or settings.topic_events, key=key, value=value))
                count += 1
        producer.flush(120)
        for future in futures:
            future.get(timeout=60)  # raises if a message was not acknowledged
    finally:
        producer.close(10)
    return count


class BackgroundProduce:
    """:func:`produce` in a thread, so that workers can be killed while events still arrive."""

    def __init__(self, settings: Settings, messages: list[tuple[bytes | None, bytes | None]],
                 over_s: float) -> None:
        self.error: BaseException | None = None
        self.count = 0
        self._thread = threading.Thread(target=self._run, args=(settings, messages, over_s),
                                        name="produce", daemon=True)
        self._thread.start()

    def _run(self, settings: Settings, messages, over_s: float) -> None:
        try:
            self.count = produce(settings, messages, over_s=over_s)
        except BaseException as exc:  # noqa: BLE001 - re-raised by join() in the test's thread
            self.error = exc

    def join(self, timeout: float = 180.0) -> int:
        """Wait for the last message to be acknowledged; returns the count, raises what the thread raised."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "producing the events did not finish"
        if self.error is not None:
            raise self.error
        return self.count


def read_topic(settings: Settings, topic: str, timeout: float = 60.0,
               isolation_level: str = "read_committed") -> list:
    """Every record of ``topic`` up to its current end offsets (partition order kept).

    Committed records only, as the project's consumers read; ``read_uncommitted``
    shows aborted transactions too.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(enable_auto_commit=False, group_id=None, isolation_level=isolation_level,
                             fetch_max_bytes=MAX_REQUEST_BYTES * 4,
                             max_partition_fetch_bytes=MAX_REQUEST_BYTES,
                             **_client_options(settings))
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        assert parts, f"topic {topic} does not exist"
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        records: list = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for tp, batch in consumer.poll(timeout_ms=500, max_records=50_000).items():
                records.extend(r for r in batch if r.offset < ends[tp])
        return records
    finally:
        consumer.close()


def log_bytes(settings: Settings, topic: str) -> int:
    """Bytes ``topic`` takes in the brokers' logs (a compressed topic takes far fewer than its records)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(request_timeout_ms=15_000, **_client_options(settings))
    try:
        return sum(p["partition_size"] for broker in admin.describe_log_dirs([topic])
                   for log_dir in broker["log_dirs"] for t in log_dir["topics"] if t["name"] == topic
                   for p in t["partitions"])
    finally:
        admin.close()


class Probe:
    """Cheap repeated looks at end offsets and a group's committed offsets."""

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaAdminClient, KafkaConsumer

        self.settings = settings
        self.admin = KafkaAdminClient(request_timeout_ms=15_000, **_client_options(settings))
        self.consumer = KafkaConsumer(enable_auto_commit=False, group_id=None,
                                      **_client_options(settings))

    def close(self) -> None:
        self.admin.close()
        self.consumer.close()

    def end_offsets(self, topic: str) -> dict:
        from kafka import TopicPartition

        parts = self.consumer.partitions_for_topic(topic) or set()
        return self.consumer.end_offsets([TopicPartition(topic, p) for p in parts])

    def total(self, *topics: str) -> int:
        return sum(sum(self.end_offsets(t).values()) for t in topics)

    def lag(self, group: str, *topics: str) -> int:
        """Messages of ``topics`` the group has not committed yet (absent commit = 0)."""
        committed = self.admin.list_group_offsets(group)[group]
        behind = 0
        for topic in topics:
            for tp, end in self.end_offsets(topic).items():
                done = committed.get(tp)
                behind += end - (done.offset if done is not None and done.offset >= 0 else 0)
        return behind

    def assignment(self, group: str, topic: str) -> list[set[int]]:
        """Partitions of ``topic`` held by each member of a stable group ([] while it rebalances)."""
        described = self.admin.describe_groups([group])[group]
        if described.get("group_state") != "Stable":
            return []
        held = []
        for member in described.get("members") or []:
            parts: set[int] = set()
            for item in (member.get("member_assignment") or {}).get("assigned_partitions", []):
                if item["topic"] == topic:
                    parts.update(item["partitions"])
            held.append(parts)
        return held


def split_between(probe: Probe, settings: Settings, members: int) -> bool:
    """The worker group is stable with ``members`` members sharing every events partition."""
    held = probe.assignment(settings.worker_group, settings.topic_events)
    return len(held) == members and all(held) and \
        set().union(*held) == set(range(settings.events_partitions))


def worker_inputs(settings: Settings) -> tuple[str, ...]:
    """Topics the worker group must have committed to be done: events and sweep commands.

    Its portal-signals topic is left out: the outage agent may keep feeding it
    (timers), and what it produces shows as alerts, which must be quiet anyway.
    """
    return settings.topic_events, f"{settings.worker_group}-call-commands"


def wait_until_done(settings: Settings, workers: Iterable[WorkerProcess] = (), *,
                    timeout: float = 180.0, quiet: float = 3.0, stall: float = 60.0,
                    fatal: tuple[str, ...] = FATAL_MARKS) -> float:
    """Wait until the group committed its inputs and the outputs stopped growing for ``quiet`` s.

    Fails at once when a worker exits or logs a ``fatal`` line, and when inputs
    stay uncommitted while nothing moves for ``stall`` s; returns the seconds waited.
    """
    workers = list(workers)
    probe = Probe(settings)
    began = time.monotonic()
    try:
        last, stable_since, seen, moved = None, began, None, began
        while True:
            for worker in workers:
                worker.check(fatal)
            outputs = probe.total(settings.topic_cdrs, settings.topic_alerts, settings.topic_dlq)
            lags = _lags_or_none(probe, settings)
            now = time.monotonic()
            if outputs != last:
                last, stable_since = outputs, now
            if (outputs, lags) != seen:
                seen, moved = (outputs, lags), now
            if lags is not None and not any(lags.values()) and now - stable_since >= quiet:
                print(f"{now - began:6.1f} s until {settings.worker_group} was done")
                return now - began
            state = f"uncommitted {lags}, outputs {outputs}, last grew {now - stable_since:.1f} s ago"
            if now - moved >= stall:
                raise AssertionError(f"{settings.worker_group} stalled for {stall:.0f} s: {state}\n"
                                     + _task_dumps(workers))
            assert now - began < timeout, f"{settings.worker_group} not done after {timeout:.0f} s: {state}"
            time.sleep(0.5)
    finally:
        probe.close()


def _task_dumps(workers: list[WorkerProcess]) -> str:
    """What every asyncio task of each live worker waits on (the worker logs it on SIGUSR1)."""
    live = [w for w in workers if w.alive]
    sizes = {w: w.log_path.stat().st_size for w in live}
    for worker in live:
        os.kill(worker.proc.pid, signal.SIGUSR1)
    time.sleep(2)
    return "\n".join(f"--- {w.log_path.name}, after SIGUSR1:\n"
                     + w.log_path.read_bytes()[sizes[w]:].decode("utf-8", "replace")[-60000:] for w in live)


def _lags_or_none(probe: Probe, settings: Settings) -> dict[str, int] | None:
    from kafka.errors import KafkaError

    try:
        return {topic: probe.lag(settings.worker_group, topic) for topic in worker_inputs(settings)}
    except KafkaError:
        return None  # the group is rebalancing or its coordinator is moving


def wait_for(predicate, what: str, timeout: float = 60.0, every: float = 0.3,
             workers: Iterable[WorkerProcess] = ()):
    """Poll ``predicate`` until it returns something truthy; that value, or fail naming ``what``
    (with what each of ``workers`` is waiting on)."""
    began = time.monotonic()
    while True:
        value = predicate()
        if value:
            print(f"{time.monotonic() - began:6.1f} s until {what}")  # shown when a test fails
            return value
        if time.monotonic() - began >= timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n"
                                 + _task_dumps(list(workers)))
        time.sleep(every)


def delete_test_topics(settings: Settings, prefix: str) -> None:
    """Delete every topic whose name starts with ``prefix`` (the test's own, internal ones too)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(request_timeout_ms=30_000, **_client_options(settings))
    try:
        names = [n for n in admin.list_topics() if n.startswith(prefix)]
        if names:
            admin.delete_topics(names)
    finally:
        admin.close()


def output_settings(settings: Settings, tag: str) -> Settings:
    """Same input topic, another group and other output topics (a reference run), created."""
    from streams import topics

    other = settings.replace(topic_cdrs=f"{settings.topic_cdrs}-{tag}",
                             topic_alerts=f"{settings.topic_alerts}-{tag}",
                             topic_dlq=f"{settings.topic_dlq}-{tag}",
                             worker_group=f"{settings.worker_group}-{tag}",
                             state_dir=f"{settings.state_dir}-{tag}")
    topics.ensure_topics(other, topics.project_topics(other))
    return other
