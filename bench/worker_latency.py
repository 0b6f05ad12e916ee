"""Latency from an event's produce to its CDR on `cdrs`, at a steady 1,000 calls/s.

    python bench/worker_latency.py [--rate 1000] [--seconds 60] [--runs 3]

A worker runs on a fresh events topic; `callstream simulate --rate R` plays
calls in wall-clock time. For every CDR version we find the event that
produced it (replaying the call's events in partition order: once both
started and ended are in, each new distinct event makes the next version)
and take CDR record timestamp - that event's record timestamp (both
CreateTime, set by the producers). p50 and p95 over the versions made by
events of the paced phase (the simulator's final flush of calls still in
progress is a burst, not a steady load); the figures are medians over
--runs runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict

import orjson
from kafka import KafkaConsumer
from worker_common import RESULTS, base_settings, end_offsets, start_worker, wait_caught_up

from common.kafka_clients import ISOLATION_LEVEL
from streams import topics


def read_all(settings, topic: str) -> list:
    consumer = KafkaConsumer(topic, bootstrap_servers=settings.bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000,
                             max_partition_fetch_bytes=8 * 1024 * 1024, isolation_level=ISOLATION_LEVEL)
    try:
        return list(consumer)
    finally:
        consumer.close()


def trigger_times(event_records: list) -> dict[tuple[str, int], int]:
    """(call_id, version) -> produce timestamp (ms) of the event that made that version."""
    by_call: dict[str, list] = defaultdict(list)
    for record in event_records:
        by_call[record.key.decode()].append(record)
    out = {}
    for call_id, records in by_call.items():
        seen, started, ended, version = set(), False, False, 0
        for record in sorted(records, key=lambda r: r.offset):
            event = orjson.loads(record.value)
            if event["event_id"] in seen:
                continue
            seen.add(event["event_id"])
            started |= event["type"] == "call.started"
            ended |= event["type"] == "call.ended"
            if started and ended:
                version += 1
                out[(call_id, version)] = record.timestamp
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_run(settings, rate: float, seconds: float) -> dict:
    topic = f"bench-latency-{uuid.uuid4().hex[:8]}"
    topics.ensure_topics(settings.replace(topic_events=topic),
                         topics.project_topics(settings.replace(topic_events=topic))[:1])
    worker = start_worker(settings, topic, "bench-lat")
    try:
        time.sleep(8)  # let the worker join its group and get its partitions
        env = dict(os.environ, CALLSTREAM_TOPIC_EVENTS=topic)
        # When its last call has started, the simulator sends what is still
        # pending (the rest of the calls in progress) at once: a burst that
        # measures backlog, not steady-state latency, so it is left out.
        paced_until_ms = (time.time() + seconds) * 1000
        subprocess.run([sys.executable, "-m", "callstream.cli", "simulate", "--rate", str(rate),
                        "--calls", str(int(rate * seconds)), "--seed", "5"], env=env, check=True)
        wait_caught_up(worker, sum(end_offsets(settings, topic).values()))
        time.sleep(3)
        triggers = trigger_times(read_all(settings, topic))
        latencies = []
        for record in read_all(settings, worker.settings.topic_cdrs):
            cdr = orjson.loads(record.value)
            produced = triggers.get((cdr["call_id"], cdr["version"]))
            if produced is not None and produced < paced_until_ms:
                latencies.append(record.timestamp - produced)
    finally:
        worker.stop()
    return {"cdr_versions": len(latencies), "p50_ms": percentile(latencies, 0.50),
            "p95_ms": percentile(latencies, 0.95), "p99_ms": percentile(latencies, 0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="calls per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = base_settings()
    runs = []
    for run in range(args.runs):
        runs.append(one_run(settings, args.rate, args.seconds))
        print(f"run {run + 1}: {runs[-1]}", flush=True)
    result = {"rate_calls_per_s": args.rate, "seconds": args.seconds, "runs": runs,
              "p50_ms": statistics.median(r["p50_ms"] for r in runs),
              "p95_ms": statistics.median(r["p95_ms"] for r in runs),
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "worker_latency.json").write_text(json.dumps(result, indent=2))
    print(f"median over {args.runs} runs at {args.rate:,.0f} calls/s: p50 {result['p50_ms']:.0f} ms, "
          f"p95 {result['p95_ms']:.0f} ms")


if __name__ == "__main__":
    main()
