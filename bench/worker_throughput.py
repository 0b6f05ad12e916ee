"""Sustained worker throughput against the ceiling of a plain Python consumer.

    python bench/worker_throughput.py [--calls 180000] [--runs 3] [--workers 1] [--bootstrap H:P,...]

1. Pre-fills (once, then reuses) a call-events topic with the simulator:
   180,000 calls are ~1,000,000 events.
2. Ceiling: a plain aiokafka consumer reads the whole topic and JSON-decodes
   every value (orjson) — the most a Python consumer does here.
3. Worker: `callstream worker` with a fresh group and output topics; the rate
   is events committed per second between its first commit and the end.
   With --workers N, N worker processes share one group (the issue's goal is
   for one; more show how the group scales on this machine).
   --bootstrap runs everything against another cluster (the three-node one of
   `callstream broker start --nodes 3`): its result file is named after its size.
Each figure is the median of --runs runs; the ratio is worker / ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid

import orjson
from aiokafka import AIOKafkaConsumer
from worker_common import (
    RESULTS,
    base_settings,
    end_offsets,
    join_worker,
    prefilled_events,
    start_worker,
    wait_caught_up,
)

from common.kafka_clients import ISOLATION_LEVEL


async def _ceiling_once(bootstrap: str, topic: str, total: int) -> dict:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"ceiling-{uuid.uuid4().hex}",
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                isolation_level=ISOLATION_LEVEL,  # as the worker reads
                                max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    try:
        seen, started, cpu_started = 0, None, None
        loads = orjson.loads
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=20000)
            if batches and started is None:
                started, cpu_started = time.perf_counter(), time.process_time()
            for records in batches.values():
                for record in records:
                    loads(record.value)
                seen += len(records)
        return {"events_per_s": seen / (time.perf_counter() - started),
                "events_per_cpu_s": seen / (time.process_time() - cpu_started)}
    finally:
        await consumer.stop()


def ceiling(bootstrap: str, topic: str, total: int) -> dict:
    """Events/s a plain aiokafka consumer reads and decodes."""
    return asyncio.run(_ceiling_once(bootstrap, topic, total))


def worker_rate(settings, topic: str, total: int, workers: int = 1) -> dict:
    """Events/s of ``workers`` worker processes in one group (CPU: all of them together)."""
    runs = [start_worker(settings, topic, "bench-tp")]
    try:
        runs += [join_worker(runs[0], n) for n in range(1, workers)]
        (t0, d0, c0), (t1, d1, c1) = wait_caught_up(runs, total)
        return {"events_per_s": (d1 - d0) / (t1 - t0), "seconds": t1 - t0,
                "events_per_cpu_s": (d1 - d0) / (c1 - c0), "group": runs[0].settings.worker_group}
    finally:
        for run in runs:
            run.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=180_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes in one group (the goal is for one; more shows the scaling)")
    parser.add_argument("--bootstrap", help="another cluster (default: CALLSTREAM_BOOTSTRAP); "
                                            "the worker and simulator processes get it too")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.bootstrap:
        os.environ["CALLSTREAM_BOOTSTRAP"] = args.bootstrap  # child processes read their settings from it
    settings = base_settings()
    topic = prefilled_events(settings, args.calls, args.seed)
    total = sum(end_offsets(settings, topic).values())
    print(f"topic {topic}: {total:,} events")
    ceilings, workers = [], []
    for run in range(args.runs):
        ceilings.append(ceiling(settings.bootstrap, topic, total))
        print(f"run {run + 1}: ceiling {ceilings[-1]['events_per_s']:,.0f} events/s "
              f"({ceilings[-1]['events_per_cpu_s']:,.0f} per CPU-second)", flush=True)
        workers.append(worker_rate(settings, topic, total, args.workers))
        print(f"run {run + 1}: worker {workers[-1]['events_per_s']:,.0f} events/s "
              f"({workers[-1]['seconds']:.1f} s; {workers[-1]['events_per_cpu_s']:,.0f} events per "
              f"CPU-second)", flush=True)
    ceiling_median = statistics.median(c["events_per_s"] for c in ceilings)
    worker_median = statistics.median(w["events_per_s"] for w in workers)
    ceiling_cpu = statistics.median(c["events_per_cpu_s"] for c in ceilings)
    worker_cpu = statistics.median(w["events_per_cpu_s"] for w in workers)
    result = {"events": total, "runs": args.runs, "workers": args.workers, "ceiling": ceilings,
              "worker": workers,
              "ceiling_median": ceiling_median, "worker_median": worker_median,
              "ratio": worker_median / ceiling_median,
              "ceiling_cpu_median": ceiling_cpu, "worker_cpu_median": worker_cpu,
              "cpu_ratio": worker_cpu / ceiling_cpu,
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "worker_throughput.json" if args.workers == 1 else f"worker_throughput_{args.workers}_workers.json"
    if args.bootstrap:
        name = name.replace(".json", f"_{len(args.bootstrap.split(','))}_brokers.json")
    (RESULTS / name).write_text(json.dumps(result, indent=2))
    print(f"median: worker {worker_median:,.0f} events/s, ceiling {ceiling_median:,.0f} events/s, "
          f"ratio {result['ratio']:.1%}; per CPU-second: worker {worker_cpu:,.0f}, "
          f"ceiling {ceiling_cpu:,.0f}, ratio {result['cpu_ratio']:.1%}")


if __name__ == "__main__":
    main()
