"""Peak memory of one worker holding 100,000 open calls.

    python bench/worker_memory.py [--calls 100000] [--runs 3]

Pre-fills (once) a topic with the simulator's calls minus their
``call.ended`` events, so that every call stays open in the worker's state;
then runs `callstream worker` over it and reads the process's peak RSS
(VmHWM) once it has consumed everything. Median of --runs runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import orjson
from kafka import KafkaAdminClient, KafkaProducer
from worker_common import RESULTS, base_settings, end_offsets, peak_rss_mib, start_worker, wait_caught_up

from common.kafka_clients import producer_options
from streams import topics
from streams.simulator import generate


def open_calls_topic(settings, calls: int, seed: int) -> str:
    """A topic with every event of `calls` calls except call.ended (reused when full)."""
    name = f"bench-open-calls-s{seed}-c{calls}"
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap)
    try:
        exists = name in admin.list_topics()
    finally:
        admin.close()
    if exists and sum(end_offsets(settings, name).values()) > 0:
        return name
    topics.ensure_topics(settings.replace(topic_events=name),
                         topics.project_topics(settings.replace(topic_events=name))[:1])
    producer = KafkaProducer(linger_ms=20, batch_size=512 * 1024, **producer_options(settings))
    start_us = 1_793_613_600_000_000  # 2026-11-02T08:00:00Z
    for message in generate(seed, calls, 50, start_us):
        if message.kind == "event" and orjson.loads(message.value)["type"] != "call.ended":
            producer.send(name, key=message.key, value=message.value)
    producer.flush()
    producer.close()
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    settings = base_settings()
    topic = open_calls_topic(settings, args.calls, args.seed)
    total = sum(end_offsets(settings, topic).values())
    print(f"topic {topic}: {total:,} events of {args.calls:,} open calls")
    peaks = []
    for run in range(args.runs):
        worker = start_worker(settings, topic, "bench-mem")
        try:
            wait_caught_up(worker, total)
            time.sleep(2)
            peaks.append(peak_rss_mib(worker.process.pid))
        finally:
            worker.stop()
        print(f"run {run + 1}: peak RSS {peaks[-1]:,.0f} MiB", flush=True)
    result = {"open_calls": args.calls, "events": total, "peak_rss_mib": peaks,
              "median_peak_rss_mib": statistics.median(peaks),
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "worker_memory.json").write_text(json.dumps(result, indent=2))
    print(f"median peak RSS with {args.calls:,} open calls: {result['median_peak_rss_mib']:,.0f} MiB")


if __name__ == "__main__":
    main()
