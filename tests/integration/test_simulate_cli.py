"""``callstream simulate`` as a subprocess against the real broker, read back with kafka-python."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict

import orjson
import pytest

from streams.domain.events import Event, Rejection
from streams.domain.timefmt import parse_ts_us
from streams.domain.validation import validate
from streams.simulator import Faults, generate_all
from streams.simulator.produce import partition_of

pytestmark = pytest.mark.integration

SUMMARY = re.compile(r"simulate: (\d+) calls, (\d+) events, (\d+) duplicates, (\d+) malformed -> ")
START = "2026-11-24T07:00:00Z"


@pytest.fixture
def sim_settings(pipeline_settings):
    """This test's own topics, deleted afterwards (each run writes up to megabytes)."""
    from streams import topics

    yield pipeline_settings
    s = pipeline_settings
    topics.delete_topics(s, [s.topic_events, s.topic_dlq, s.topic_cdrs, s.topic_alerts])


def _command(settings, *args: str) -> list[str]:
    return [sys.executable, "-m", "callstream.cli", "simulate", "--bootstrap", settings.bootstrap,
            "--topic-events", settings.topic_events, *args]


def _counts(stdout: str) -> tuple[int, int, int, int]:
    match = SUMMARY.search(stdout)
    assert match, stdout
    return tuple(int(x) for x in match.groups())  # type: ignore[return-value]


def _read_topic(settings) -> list:
    """Every record of the events topic (it is fresh: its end offsets are the whole story)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False,
                             group_id=None, **settings.kafka_client_options())
    try:
        parts = [TopicPartition(settings.topic_events, p)
                 for p in consumer.partitions_for_topic(settings.topic_events)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        records, deadline = [], time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in parts) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500, max_records=50_000).values():
                records.extend(batch)
        assert sum(ends.values()) == len(records)
        return records
    finally:
        consumer.close()


def _truth(path) -> tuple[list[dict], list[dict]]:
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return [t for t in lines if not t.get("malformed")], [t for t in lines if t.get("malformed")]


def test_simulate_sends_exactly_what_the_generator_makes(sim_settings, tmp_path):
    truth_path = tmp_path / "truth.jsonl"
    args = ("--calls", "400", "--seed", "7", "--start", START, "--portals", "8", "--duplicates", "0.05",
            "--malformed", "0.03", "--shuffle", "0.2", "--late-recordings", "0.2", "--truth", str(truth_path))
    done = subprocess.run(_command(sim_settings, *args), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    calls, events, duplicates, bad = _counts(done.stdout)
    assert calls == 400 and duplicates > 0 and bad > 0
    records = _read_topic(sim_settings)
    assert len(records) == events + duplicates + bad

    call_truth, bad_truth = _truth(truth_path)
    assert len(call_truth) == 400 and len(bad_truth) == bad
    distinct: dict[str, set[str]] = defaultdict(set)
    reasons = Counter()
    for record in records:
        parsed = validate(record.value, record.key)
        assert record.partition == partition_of(record.key, 8)
        if isinstance(parsed, Rejection):
            reasons[parsed.reason] += 1
            continue
        assert isinstance(parsed, Event) and record.key == parsed.call_id.encode()
        distinct[parsed.call_id].add(parsed.event_id)
    assert reasons == Counter(t["reason"] for t in bad_truth)
    assert {t["call_id"]: t["events"] for t in call_truth} == {c: len(ids) for c, ids in distinct.items()}
    assert sum(len(ids) for ids in distinct.values()) == events

    # The producer is a thin layer: per partition, the generator's sequence, byte for byte.
    faults = Faults(duplicates=0.05, shuffle=0.2, late_recordings=0.2, malformed=0.03)
    expected, expected_truth = generate_all("7", 400, 8, parse_ts_us(START), faults)
    assert expected_truth == [orjson.loads(line) for line in truth_path.read_bytes().splitlines()]
    sent, read = defaultdict(list), defaultdict(list)
    for message in expected:
        sent[partition_of(message.key, 8)].append((message.key, message.value))
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        read[record.partition].append((record.key, record.value))
    assert read == sent


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_flushes_and_reports(sim_settings, tmp_path, signum, code):
    truth_path = tmp_path / "truth.jsonl"
    proc = subprocess.Popen(_command(sim_settings, "--calls", "0", "--portals", "5", "--seed", "3",
                                     "--truth", str(truth_path)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not truth_path.exists() or truth_path.stat().st_size < 200_000):
        time.sleep(0.2)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert stderr == ""
    calls, events, duplicates, bad = _counts(stdout)
    assert calls > 100 and duplicates == bad == 0
    records = _read_topic(sim_settings)
    assert len(records) == events
    call_truth, _ = _truth(truth_path)
    assert len(call_truth) == calls
    per_call = Counter(r.key.decode() for r in records)
    assert per_call == Counter({t["call_id"]: t["events"] for t in call_truth})


def test_paced_run_follows_wall_time(sim_settings):
    began = time.time()
    done = subprocess.run(_command(sim_settings, "--calls", "15", "--rate", "10", "--portals", "3"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert _counts(done.stdout)[0] == 15
    starts = [parse_ts_us(orjson.loads(r.value)["ts"]) / 1e6 for r in _read_topic(sim_settings)
              if orjson.loads(r.value)["type"] == "call.started"]
    assert len(starts) == 15
    assert all(began - 5 < s < time.time() + 5 for s in starts)
    assert 0.3 < max(starts) - min(starts) < 10  # 15 calls at about 10 per second


def test_missing_topic_and_unreachable_broker_are_one_line_errors(kafka_settings, unique):
    missing = subprocess.run([sys.executable, "-m", "callstream.cli", "simulate", "--calls", "1",
                              "--bootstrap", kafka_settings.bootstrap, "--topic-events", f"absent-{unique}"],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1
    assert missing.stderr.strip() == (f"callstream simulate: error: topic absent-{unique} does not exist "
                                      "(create it with: callstream topics create)")
    nowhere = subprocess.run([sys.executable, "-m", "callstream.cli", "simulate", "--calls", "1",
                              "--bootstrap", "127.0.0.1:1"], capture_output=True, text=True, timeout=120,
                             env=dict(os.environ))
    assert nowhere.returncode == 1
    lines = nowhere.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("callstream simulate: error: cannot reach Kafka at 127.0.0.1:1")


def test_malformed_needs_room_for_over_size_values(kafka_settings, unique):
    from streams import topics

    small = kafka_settings.replace(topic_events=f"t{unique}-small")
    # Kafka's stock limit (our broker raises its default to 2 MiB, so say it explicitly).
    topics.ensure_topics(small, [topics.TopicSpec(small.topic_events, 2,
                                                  {"max.message.bytes": "1048588"})])
    try:
        done = subprocess.run(_command(small, "--calls", "50", "--malformed", "0.1"),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2
        assert "takes messages up to" in done.stderr and "max.message.bytes to 2 MiB" in done.stderr
        assert _read_topic(small) == []  # refused before sending anything
    finally:
        topics.delete_topics(small, [small.topic_events])


def test_every_codec_sends_the_same_messages(sim_settings, unique):
    """``--compression`` (or CALLSTREAM_COMPRESSION) with each codec Kafka has: the same messages
    back, compressed for real (the topic takes far fewer bytes than with ``none``)."""
    from common.config import CODECS
    from streams import topics
    from tests.integration.worker_harness import log_bytes

    args = ("--calls", "60", "--seed", "11", "--start", START, "--portals", "4", "--malformed", "0.02")
    expected, _ = generate_all("11", 60, 4, parse_ts_us(START), Faults(malformed=0.02))
    sizes = {}
    for codec in CODECS:
        settings = sim_settings.replace(topic_events=f"t{unique}-{codec}")
        topics.ensure_topics(settings, [topics.TopicSpec(settings.topic_events, 4,
                                                         {"max.message.bytes": str(2 * 1024 * 1024)})])
        try:
            # zstd through the setting, the others through the flag (which wins over it).
            flag = ("--compression", codec) if codec != "zstd" else ()
            env = dict(os.environ, CALLSTREAM_COMPRESSION="zstd" if codec == "zstd" else "gzip")
            done = subprocess.run(_command(settings, *args, *flag), capture_output=True, text=True,
                                  timeout=120, env=env)
            assert done.returncode == 0, (codec, done.stderr)
            assert Counter((r.key, r.value) for r in _read_topic(settings)) == \
                Counter((m.key, m.value) for m in expected), codec
            sizes[codec] = log_bytes(settings, settings.topic_events)
        finally:
            topics.delete_topics(settings, [settings.topic_events])
    assert all(sizes[codec] < sizes["none"] / 2 for codec in CODECS if codec != "none"), sizes
