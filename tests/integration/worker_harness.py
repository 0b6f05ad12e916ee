"""Helpers for the worker's integration tests: processes, topics, and what the pure core expects.

- :class:`Fleet` runs ``callstream worker`` subprocesses (own session, log file
  each), kills them on exit and prints their log tails when a test fails;
- :func:`produce`, :func:`read_topic`, :func:`wait_until_done` talk to Kafka
  with kafka-python (never through the worker's code);
- :func:`expect` computes, from the records actually stored in the events
  topic, the CDRs, per-call alerts and DLQ records the contract demands, with
  the pure core only (``validate``, ``build_cdr``, ``call_alerts``, ``dlq_record``).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import orjson
import pytest

from callstream.config import SETTINGS, Settings
from streams.domain.alerts import AlertRules, alert_to_json, call_alerts
from streams.domain.cdr import build_cdr, state_of_events
from streams.domain.cdr_json import cdr_to_json
from streams.domain.dlq import dlq_record
from streams.domain.events import Event, Rejection
from streams.domain.rating import load_tariffs
from streams.domain.state import is_complete
from streams.domain.timefmt import format_ts_ms
from streams.domain.validation import validate
from streams.domain.wire import format_ts_wire

MAX_REQUEST_BYTES = 4 * 1024 * 1024  # room for the simulator's over-1-MiB messages
# Log lines after which a worker never gets anywhere: fail at once instead of at the deadline.
FATAL_MARKS = ("Error in recovery", "[CRITICAL]")


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
        """Start a worker named ``name`` (log ``<name>.log``) configured by ``settings`` + ``env``."""
        worker = WorkerProcess(settings, self.tmp_path / f"{name}.log", args,
                               settings_env(settings, **env))
        self.workers.append(worker)
        return worker

    def __enter__(self) -> "Fleet":
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
            topic: str | None = None) -> int:
    """Send (key, value) pairs in order (default partitioner: murmur2 of the key); returns the count."""
    from kafka import KafkaProducer

    producer = KafkaProducer(acks="all", linger_ms=20, batch_size=512 * 1024,
                             max_request_size=MAX_REQUEST_BYTES, enable_idempotence=True,
                             **_client_options(settings))
    count = 0
    try:
        futures = []
        for key, value in messages:
            futures.append(producer.send(topic or settings.topic_events, key=key, value=value))
            count += 1
        producer.flush(120)
        for future in futures:
            future.get(timeout=60)  # raises if a message was not acknowledged
    finally:
        producer.close(10)
    return count


def read_topic(settings: Settings, topic: str, timeout: float = 60.0) -> list:
    """Every record of ``topic`` up to its current end offsets (partition order kept)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(enable_auto_commit=False, group_id=None,
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


def worker_topics(settings: Settings) -> tuple[str, ...]:
    """Topics the worker group consumes: events, sweep commands, portal signals."""
    group = settings.worker_group
    return settings.topic_events, f"{group}-call-commands", f"{group}-portal-signals"


def wait_until_done(settings: Settings, workers: Iterable[WorkerProcess] = (), *,
                    timeout: float = 180.0, quiet: float = 3.0,
                    fatal: tuple[str, ...] = FATAL_MARKS) -> float:
    """Wait until the group committed every input and the outputs stopped growing for ``quiet`` s.

    Fails at once when a worker exits or logs a ``fatal`` line; returns the seconds waited.
    """
    workers = list(workers)
    probe = Probe(settings)
    began = time.monotonic()
    try:
        last, stable_since = None, time.monotonic()
        while True:
            for worker in workers:
                worker.check(fatal)
            outputs = probe.total(settings.topic_cdrs, settings.topic_alerts, settings.topic_dlq)
            lag = _lag_or_none(probe, settings)
            now = time.monotonic()
            if outputs != last:
                last, stable_since = outputs, now
            if lag == 0 and now - stable_since >= quiet:
                return now - began
            assert now - began < timeout, f"not done after {timeout:.0f} s: lag {lag}, outputs {outputs}"
            time.sleep(0.5)
    finally:
        probe.close()


def _lag_or_none(probe: Probe, settings: Settings) -> int | None:
    from kafka.errors import KafkaError

    try:
        return probe.lag(settings.worker_group, *worker_topics(settings))
    except KafkaError:
        return None  # the group is rebalancing or its coordinator is moving


def wait_for(predicate, what: str, timeout: float = 60.0, every: float = 0.3):
    """Poll ``predicate`` until it returns something truthy; that value, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
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


# ---------------------------------------------------------------- outputs

def loads_exact(value: bytes) -> dict:
    """JSON with numbers kept as their text, so ``12.500`` is compared digit by digit."""
    return json.loads(value, parse_float=str)


def without_version(cdr: dict) -> dict:
    return {k: v for k, v in cdr.items() if k != "version"}


@dataclass
class CdrLog:
    """Every CDR version seen per call, checked for gaps and for conflicting duplicates."""

    versions: dict[str, dict[int, bytes]] = field(default_factory=lambda: defaultdict(dict))
    problems: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, records: list) -> "CdrLog":
        log = cls()
        for record in records:
            doc = orjson.loads(record.value)
            call_id, version = doc["call_id"], doc["version"]
            if record.key != call_id.encode():
                log.problems.append(f"{call_id} v{version}: key {record.key!r}")
            body = orjson.dumps(without_version(loads_exact(record.value)))
            seen = log.versions[call_id].get(version)
            if seen is not None and seen != body:
                log.problems.append(f"{call_id} v{version} emitted twice with different content")
            log.versions[call_id][version] = body
        for call_id, by_version in log.versions.items():
            if sorted(by_version) != list(range(1, len(by_version) + 1)):
                log.problems.append(f"{call_id}: versions {sorted(by_version)} are not 1..n")
        return log

    def latest(self) -> dict[str, dict]:
        """call_id -> the highest version's CDR (without ``version``), numbers as text."""
        return {call_id: orjson.loads(by_version[max(by_version)])
                for call_id, by_version in self.versions.items()}

    def top_version(self, call_id: str) -> int:
        return max(self.versions[call_id]) if call_id in self.versions else 0


def latest_alerts(records: list) -> dict[str, dict]:
    """alert_id -> its latest message (alerts of one portal share a partition, so order holds)."""
    latest: dict[str, dict] = {}
    for record in records:
        doc = orjson.loads(record.value)
        assert record.key == doc["portal_id"].encode(), (record.key, doc)
        latest[doc["alert_id"]] = doc
    return latest


# ---------------------------------------------------------------- expectations

@dataclass
class Expected:
    """What the contract demands of the worker for the records of an events topic."""

    cdrs: dict[str, dict]                    # call_id -> CDR without version (numbers as text)
    incomplete: set[str]                     # calls without both call.started and call.ended
    alerts: dict[str, dict]                  # per-call alert_id -> alert
    dlq: dict[tuple[int, int], dict]         # (partition, offset) -> DLQ record
    events: dict[str, list[Event]]           # call_id -> its valid events (copies included)
    bypasses: dict[str, dict[str, int]]      # portal -> call -> earliest bypass ts
    checked: dict[str, dict[str, int]]       # portal -> call -> earliest reply ts (not bypassed)


def expect(records: list, settings: Settings) -> Expected:
    """The contract's outputs for these records of the events topic, from the pure core alone."""
    tariffs, rules, topic = load_tariffs(settings.tariffs_path), rules_of(settings), settings.topic_events
    events: dict[str, list[Event]] = defaultdict(list)
    dlq: dict[tuple[int, int], dict] = {}
    for record in records:
        result = validate(record.value, record.key)
        if isinstance(result, Rejection):
            dlq[(record.partition, record.offset)] = dlq_record(
                result, topic, record.partition, record.offset, record.value)
        else:
            events[result.call_id].append(result)
    cdrs, incomplete, alerts = {}, set(), {}
    bypasses: dict[str, dict[str, int]] = defaultdict(dict)
    checked: dict[str, dict[str, int]] = defaultdict(dict)
    for call_id, call_events in events.items():
        state = state_of_events(call_events)
        complete = is_complete(state)
        if not complete:
            incomplete.add(call_id)
        cdr = build_cdr(call_events, tariffs, incomplete=not complete)
        cdrs[call_id] = without_version(loads_exact(cdr_to_json(cdr, 1)))
        for alert in call_alerts(state, cdr, rules):
            alerts[alert.alert_id] = orjson.loads(alert_to_json(alert))
        if state.bypassed is not None:
            bypasses[cdr.portal_id][call_id] = state.bypassed.ts_us
        elif state.replied_first:
            checked[cdr.portal_id][call_id] = min(state.replied_first).ts_us
    return Expected(cdrs, incomplete, alerts, dlq, dict(events), dict(bypasses), dict(checked))


def rules_of(settings: Settings) -> AlertRules:
    """The alert thresholds the settings give the worker."""
    return AlertRules(outage_calls=settings.outage_calls,
                      outage_window_us=int(settings.outage_window * 1_000_000),
                      stale_key_after_us=int(settings.stale_key_after * 1_000_000))


def raw_bytes(dlq_doc: dict) -> bytes:
    """The original bytes a DLQ record keeps (``raw`` text or ``raw_b64``)."""
    if "raw_b64" in dlq_doc:
        assert "raw" not in dlq_doc, dlq_doc
        return base64.b64decode(dlq_doc["raw_b64"])
    return dlq_doc["raw"].encode("utf-8")


def outage_problems(alerts: dict[str, dict], expected: Expected, rules: AlertRules) -> list[str]:
    """Ways the ``controller_outage`` alerts break the contract's rule (empty when none)."""
    problems = []
    for alert_id, alert in alerts.items():
        if alert["type"] != "controller_outage":
            continue
        portal, detail = alert["portal_id"], alert["detail"]
        bypassed = expected.bypasses.get(portal, {})
        opened_us = bypassed.get(detail["opened_by_call_id"])
        if opened_us is None or detail["opened_at"] != format_ts_ms(opened_us):
            problems.append(f"{alert_id}: opened by {detail['opened_by_call_id']} at "
                            f"{detail['opened_at']}, not a bypass of this portal at that ts")
            continue
        # The id names the opening bypass's ts as on the wire (ms, or us when it has them).
        if alert_id != f"controller_outage:{portal}:{format_ts_wire(opened_us)}":
            problems.append(f"{alert_id}: id does not name portal and opening bypass ts")
        within = [ts for ts in bypassed.values() if opened_us - rules.outage_window_us <= ts <= opened_us]
        if len(within) < rules.outage_calls:
            problems.append(f"{alert_id}: only {len(within)} bypasses within the window")
        if detail["state"] == "resolved":
            by = detail["resolved_by_call_id"]
            at = expected.checked.get(portal, {}).get(by)
            if at is None or format_ts_ms(at) != detail["resolved_at"] or at <= opened_us:
                problems.append(f"{alert_id}: resolved by {by} at {detail['resolved_at']}, "
                                "not a later checked call of this portal")
        elif detail["state"] != "open":
            problems.append(f"{alert_id}: state {detail['state']!r}")
    return problems


# ---------------------------------------------------------------- hand-built events

def event(call_id: str, type_: str, ts_us: int, data: dict | None = None, *,
          portal: str = "portal-1", event_id: str | None = None) -> tuple[bytes, bytes]:
    """One contract-v1 event as a (key, value) message."""
    source = "controller" if type_ == "controller.replied" else "voice"
    doc = {"event_id": event_id or uuid.uuid4().hex, "v": 1, "type": type_, "call_id": call_id,
           "portal_id": portal, "source": source, "node": "ctl-1" if source == "controller" else "vs-1",
           "ts": format_ts_ms(ts_us), "data": data or {}}
    return call_id.encode(), orjson.dumps(doc)


def call_events(call_id: str, start_us: int, *, record: bool = False,
                portal: str = "portal-1") -> dict[str, tuple[bytes, bytes]]:
    """An answered outbound operator call to Moscow (8 s ring, 95.5 s talk), by event type."""
    s = 1_000_000
    started = {"direction": "outbound", "line": "operator", "from": "user:u1", "to": "+74951234567",
               "line_number": None, "shown_number": None, "user_id": "u1", "extranet": False,
               "record": record}
    events = {
        "call.started": event(call_id, "call.started", start_us, started, portal=portal),
        "controller.requested": event(call_id, "controller.requested", start_us + s // 10, portal=portal),
        "controller.replied": event(call_id, "controller.replied", start_us + s // 5,
                                    {"result": "ok", "config_id": "cfg-1"}, portal=portal),
        "call.answered": event(call_id, "call.answered", start_us + 8 * s, {"user_id": "u1"},
                               portal=portal),
        "call.ended": event(call_id, "call.ended", start_us + 103_500_000,
                            {"cause": "normal", "by": "caller"}, portal=portal),
    }
    if record:
        events["recording.stored"] = recording(call_id, start_us + 105 * s, 760_000, portal=portal)
    return events


def recording(call_id: str, ts_us: int, size: int, *, portal: str = "portal-1") -> tuple[bytes, bytes]:
    """A ``recording.stored`` event of ``size`` bytes at a fresh URL."""
    url = f"https://rec.example.net/{call_id}/{uuid.uuid4().hex[:8]}.mp3"
    return event(call_id, "recording.stored", ts_us,
                 {"url": url, "bytes": size, "seconds": 95.5, "format": "mp3"}, portal=portal)
