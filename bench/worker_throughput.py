"""Sustained worker throughput against the ceiling of a plain Python consumer.

    python bench/worker_throughput.py [--calls 180000] [--runs 3] [--workers 1 [2 3 ...]]
        [--no-ceiling] [--bootstrap H:P,...]

1. Pre-fills (once, then reuses) a call-events topic with the simulator:
   180,000 calls are ~1,000,000 events.
2. Ceiling: a plain aiokafka consumer reads the whole topic and JSON-decodes
   every value (orjson) — the most a Python consumer does here.
3. Worker: `callstream worker` with a fresh group and output topics, on a copy
   of the topic that becomes readable at once when every worker of the run is
   in the group (bench/worker_gate.py: on a loaded machine workers started
   together joined up to 45 s apart); the rate is events committed per second
   between the group's first commit and the end.
   With --workers N, N worker processes share one group; with several
   counts (``--workers 1 2 3``) each run measures every count in turn on the
   same topic, so that the machine's load falls on all of them alike.
   CPU is every worker's user + system time: from the first commit to the
   last, and to "quiet" (the CPU that lags the commits — a standby replaying
   its peers' changelogs — belongs to the events too). CPU per event of N
   workers is compared with one worker's of the same run (issue 16: at most
   1.3x). The load average is noted with every measurement.
   --bootstrap runs everything against another cluster (the three-node one of
   `callstream broker start --nodes 3`): its result file is named after its size.
Each figure is the median of --runs runs; the ratio is worker / ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import time
import uuid

import orjson
from aiokafka import AIOKafkaConsumer
from worker_common import (
    RESULTS,
    base_settings,
    delete_topics,
    end_offsets,
    join_worker,
    prefilled_events,
    start_prepared,
    unique_settings,
    wait_caught_up,
    wait_members,
    wait_quiet,
)
from worker_gate import GatedCopy

from common.kafka_clients import ISOLATION_LEVEL
from streams import topics
from streams.worker import worker_topics


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


def worker_rate(settings, topic: str, workers: int = 1) -> dict:
    """Events/s of ``workers`` worker processes in one group (CPU: all of them together).

    The events are a copy of ``topic`` that the workers see only once all of them
    are in the group (bench/worker_gate.py).
    """
    unique, run_settings = unique_settings(settings, "bench-tp")
    topics.ensure_topics(run_settings, worker_topics(run_settings))
    runs: list = []
    gate = GatedCopy(settings.bootstrap, topic, run_settings.topic_events, settings.events_partitions)
    try:
        runs = [start_prepared(unique, run_settings)]
        runs += [join_worker(runs[0], n) for n in range(1, workers)]
        joined_s = wait_members(runs)
        load = os.getloadavg()[0]
        gate.release()
        # Less the gate's abort markers, which end each partition (no events; committed or not).
        total = sum(end_offsets(settings, run_settings.topic_events).values()) - settings.events_partitions
        (t0, d0, c0), (t1, d1, c1) = wait_caught_up(runs, total)
        _, c2 = wait_quiet(runs)
        events = d1 - d0
        return {"workers": workers, "events_per_s": events / (t1 - t0), "seconds": t1 - t0,
                "events_per_cpu_s": events / (c1 - c0), "cpu_s": c1 - c0,
                "cpu_us_per_event": (c1 - c0) / events * 1e6,
                "cpu_us_per_event_to_quiet": (c2 - c0) / events * 1e6,
                "load_before": load, "load_after": os.getloadavg()[0], "group_formed_s": joined_s,
                "copied": gate.copied, "group": run_settings.worker_group}
    finally:
        gate.close()
        for run in runs:
            run.stop()
        # A million events leave ~a gigabyte of changelogs per run: the run's own topics go.
        delete_topics(settings, unique)
        for run in runs:
            shutil.rmtree(run.settings.state_dir, ignore_errors=True)


def _summary(rows: list[dict]) -> dict:
    keys = ("events_per_s", "events_per_cpu_s", "cpu_us_per_event", "cpu_us_per_event_to_quiet")
    return {f"{key}_median": statistics.median(r[key] for r in rows) for key in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=180_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="worker processes in one group; several counts are measured in turn per run")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the plain consumer's ceiling")
    parser.add_argument("--bootstrap", help="another cluster (default: CALLSTREAM_BOOTSTRAP); "
                                            "the worker and simulator processes get it too")
    args = parser.parse_args()
    if min(args.workers) < 1:
        parser.error("--workers must be at least 1")
    if args.bootstrap:
        os.environ["CALLSTREAM_BOOTSTRAP"] = args.bootstrap  # child processes read their settings from it
    settings = base_settings()
    topic = prefilled_events(settings, args.calls, args.seed)
    total = sum(end_offsets(settings, topic).values())
    print(f"topic {topic}: {total:,} events")
    ceilings: list[dict] = []
    measured: dict[int, list[dict]] = {n: [] for n in args.workers}
    for run in range(args.runs):
        if not args.no_ceiling:
            ceilings.append(ceiling(settings.bootstrap, topic, total))
            print(f"run {run + 1}: ceiling {ceilings[-1]['events_per_s']:,.0f} events/s "
                  f"({ceilings[-1]['events_per_cpu_s']:,.0f} per CPU-second)", flush=True)
        for n in args.workers:
            row = worker_rate(settings, topic, n)
            measured[n].append(row)
            print(f"run {run + 1}: {n} worker(s) {row['events_per_s']:,.0f} events/s ({row['seconds']:.1f} s; "
                  f"{row['events_per_cpu_s']:,.0f} events per CPU-second; {row['cpu_us_per_event']:.2f} "
                  f"CPU-us per event, {row['cpu_us_per_event_to_quiet']:.2f} to quiet; load "
                  f"{row['load_before']:.1f} -> {row['load_after']:.1f})", flush=True)
    result: dict = {"events": total, "runs": args.runs, "topic": topic, "ceiling": ceilings,
                    "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "workers": {str(n): {"runs": rows, **_summary(rows)} for n, rows in measured.items()}}
    if ceilings:
        result["ceiling_median"] = statistics.median(c["events_per_s"] for c in ceilings)
        result["ceiling_cpu_median"] = statistics.median(c["events_per_cpu_s"] for c in ceilings)
    for n, rows in measured.items():
        one = result["workers"][str(n)]
        line = (f"median, {n} worker(s): {one['events_per_s_median']:,.0f} events/s, "
                f"{one['events_per_cpu_s_median']:,.0f} per CPU-second, "
                f"{one['cpu_us_per_event_median']:.2f} CPU-us per event "
                f"({one['cpu_us_per_event_to_quiet_median']:.2f} to quiet)")
        if ceilings:
            one["ratio"] = one["events_per_s_median"] / result["ceiling_median"]
            one["cpu_ratio"] = one["events_per_cpu_s_median"] / result["ceiling_cpu_median"]
            line += f"; {one['ratio']:.1%} of the ceiling ({one['cpu_ratio']:.1%} per CPU-second)"
        if 1 in measured and n != 1:
            # Per run against the same run's single worker, then the median of those ratios.
            ratios = [r["cpu_us_per_event_to_quiet"] / single["cpu_us_per_event_to_quiet"]
                      for r, single in zip(rows, measured[1])]
            one["cpu_per_event_vs_one"] = statistics.median(ratios)
            line += f"; CPU per event {one['cpu_per_event_vs_one']:.2f}x one worker's (goal <= 1.3x)"
        print(line)
    if ceilings:
        print(f"median ceiling: {result['ceiling_median']:,.0f} events/s "
              f"({result['ceiling_cpu_median']:,.0f} per CPU-second)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "worker_throughput.json" if args.workers == [1] else \
        f"worker_throughput_{'_'.join(map(str, args.workers))}_workers.json"
    if args.bootstrap:
        name = name.replace(".json", f"_{len(args.bootstrap.split(','))}_brokers.json")
    (RESULTS / name).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
