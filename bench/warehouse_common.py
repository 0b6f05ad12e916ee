"""Shared pieces of the warehouse benchmarks: CDR streams, topics, a sink subprocess, statistics."""

from __future__ import annotations

import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psutil

from common.config import Settings

REGIONS = (("Russia mobile", "2.20"), ("Moscow landline", "1.00"), ("Kazakhstan", "7.20"),
           ("Germany mobile", "9.00"), ("SIP trunk (own carrier)", "0.00"))


def _seconds(value: float) -> orjson.Fragment:
    return orjson.Fragment(f"{value:.3f}".encode())


def cdr_value(rng: random.Random, call_id: str, version: int, started_us: int, portals: int = 50) -> bytes:
    """One contract CDR (JSON bytes) with plausible, varied values."""
    portal = int(portals * rng.random() ** 2)
    region, rate = REGIONS[int(len(REGIONS) * rng.random() ** 1.5)]
    answered = rng.random() < 0.7
    talk = round(rng.lognormvariate(4, 1), 3) if answered else 0.0
    billed = int(talk + 0.999)
    started = datetime.fromtimestamp(started_us / 1e6, UTC)
    ts = started.strftime("%Y-%m-%dT%H:%M:%S.") + f"{started.microsecond // 1000:03d}Z"
    end_us = started_us + int((talk + 7) * 1e6)
    ended = datetime.fromtimestamp(end_us / 1e6, UTC)
    recorded = answered and portal % 3 != 0
    return orjson.dumps({
        "call_id": call_id, "portal_id": f"p-{portal:02d}", "version": version, "direction": "outbound",
        "line": "operator", "from": f"user:u-{portal:02d}-{rng.randrange(200):03d}",
        "to": f"+79{rng.randrange(10**9):09d}", "line_number": None, "shown_number": None,
        "extranet": False, "user_id": f"u-{portal:02d}-{rng.randrange(200):03d}", "started_at": ts,
        "answered_at": ts if answered else None,
        "ended_at": ended.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ended.microsecond // 1000:03d}Z",
        "ring_s": _seconds(7), "talk_s": _seconds(talk), "duration_s": _seconds(talk + 7),
        "status": "answered" if answered else "missed", "hangup_cause": "normal", "queue_attempts": 0,
        "forwarded_to": None, "controller": "bypassed" if rng.random() < 0.02 else "checked",
        "controller_result": "ok", "region": region, "rate_per_min": rate, "billed_s": billed,
        "cost": f"{float(rate) * billed / 60:.2f}", "currency": "RUB",
        "recording_urls": [f"https://rec.example/{call_id}.mp3"] if recorded else [],
        "recording_bytes": int(talk * 16000) if recorded else 0, "recording_s": _seconds(talk if recorded else 0),
        "events": 6,
    })


def bench_settings(tag: str) -> Settings:
    """Settings with this run's own topics and sink group, topics created."""
    from streams import topics

    unique = f"bench-{tag}-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env().replace(
        topic_events=f"{unique}-call-events", topic_dlq=f"{unique}-dlq", topic_cdrs=f"{unique}-cdrs",
        topic_alerts=f"{unique}-alerts", sink_group=f"{unique}-sink")
    topics.ensure_topics(settings, topics.project_topics(settings))
    return settings


def drop_topics(settings: Settings) -> None:
    """Delete the run's topics (benchmarks clean up after themselves)."""
    from streams import topics

    topics.delete_topics(settings, [settings.topic_events, settings.topic_dlq, settings.topic_cdrs,
                                    settings.topic_alerts])


def producer(settings: Settings):
    """A kafka-python producer tuned for throughput."""
    from kafka import KafkaProducer

    from common.kafka_clients import producer_options

    return KafkaProducer(linger_ms=20, batch_size=512 * 1024, **producer_options(settings))


def copy_warehouse(source: Path, target: Path) -> Path:
    """A scratch copy of a generated warehouse (the sink under test rewrites files)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("writer.lock", ".spill"))
    return target


def start_sink(settings: Settings, root: Path, *extra: str) -> subprocess.Popen:
    """``callstream sink`` in its own process, on the run's topics."""
    return subprocess.Popen(
        [sys.executable, "-m", "callstream.cli", "sink", "--bootstrap", settings.bootstrap,
         "--topic-events", settings.topic_events, "--topic-cdrs", settings.topic_cdrs,
         "--topic-alerts", settings.topic_alerts, "--topic-dlq", settings.topic_dlq,
         "--group", settings.sink_group, "--warehouse", str(root), "--log-level", "WARNING", *extra],
        stdout=subprocess.DEVNULL)


def watch_peak_rss(process: subprocess.Popen, every_s: float) -> float:
    """Peak RSS, MiB, of ``process`` sampled every ``every_s`` until it exits."""
    watched, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(every_s)
    return peak / 2**20


def stop(process: subprocess.Popen) -> None:
    """SIGTERM and wait (the sink flushes before it exits)."""
    process.terminate()
    process.wait(timeout=60)


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


def summary(values: list[float]) -> str:
    """median / p95 / max of timings in seconds, printed in milliseconds."""
    return (f"median {statistics.median(values) * 1000:7.1f} ms  p95 {percentile(values, 95) * 1000:7.1f} ms"
            f"  max {max(values) * 1000:7.1f} ms")


def now_us() -> int:
    """Wall-clock UTC microseconds."""
    return time.time_ns() // 1000


def feed(settings: Settings, rate: float, seconds: float, seed: int = 1) -> int:
    """Send new CDRs (and second versions of recent ones) at ``rate`` per second; returns the count."""
    import logging

    logging.getLogger("kafka").setLevel(logging.ERROR)  # a busy machine makes kafka-python chatty
    rng = random.Random(seed)
    send = producer(settings)
    started, sent, recent = time.monotonic(), 0, []
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate) - sent
        for _ in range(due):
            if recent and rng.random() < 0.2:
                call_id, version = recent[rng.randrange(len(recent))], 2
            else:
                call_id, version = f"live-{seed}-{sent:08d}", 1
                recent = (recent + [call_id])[-1000:]
            send.send(settings.topic_cdrs, key=call_id.encode(),
                      value=cdr_value(random.Random(call_id), call_id, version, now_us() - 60_000_000))
            sent += 1
        time.sleep(0.01)
    send.flush()
    return sent
