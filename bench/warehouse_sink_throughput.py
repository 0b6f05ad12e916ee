"""Sink throughput: CDRs per second from a pre-filled ``cdrs`` topic into a fresh warehouse.

    python bench/warehouse_sink_throughput.py --cdrs 1000000 --runs 3

The topic is filled once (80 % new calls, 20 % second versions of earlier
ones, over the last 30 days); each run consumes all of it with the real sink
(in this process, compaction thread included) into an empty warehouse until
caught up. Figure: CDRs / wall time of ``Sink.run``, median of the runs.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from warehouse_common import bench_settings, cdr_value, drop_topics, now_us, producer

from warehouse.compaction import CompactionPolicy
from warehouse.sink import Sink, SinkOptions
from warehouse.writer import Writer


def fill(settings, count: int) -> None:
    """``count`` CDR messages on the run's cdrs topic."""
    rng = random.Random(7)
    send = producer(settings)
    start = now_us() - 30 * 86_400_000_000
    started = time.perf_counter()
    for n in range(count):
        update = n > 1000 and rng.random() < 0.2
        call = rng.randrange(n) if update else n
        rng_call = random.Random(call)
        value = cdr_value(rng_call, f"c-{call:09d}", 2 if update else 1,
                          start + call * 2_592_000_000_000 // count)
        send.send(settings.topic_cdrs, key=f"c-{call:09d}".encode(), value=value)
    send.flush()
    print(f"filled {count} CDRs in {time.perf_counter() - started:.1f} s")


def run_once(settings, count: int, run: int, policy: CompactionPolicy) -> float:
    root = Path(tempfile.mkdtemp(prefix="callstream-bench-sink-"))
    try:
        with Writer(root) as writer:
            sink = Sink(settings.replace(sink_group=f"{settings.sink_group}-{run}"), writer,
                        SinkOptions(until_caught_up=True, policy=policy))
            started = time.perf_counter()
            stats = sink.run(threading.Event())
            elapsed = time.perf_counter() - started
        assert stats.rows.get("cdrs") == count, stats
        print(f"run {run}: {count} CDRs in {elapsed:.2f} s = {count / elapsed:,.0f} CDRs/s "
              f"({stats.flushes} flushes)")
        return count / elapsed
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdrs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compact-rows", type=int, default=CompactionPolicy().major_rows,
                        help="the sink's major-compaction threshold (default: the sink's own)")
    args = parser.parse_args()
    policy = CompactionPolicy(major_rows=args.compact_rows)
    settings = bench_settings("sink")
    try:
        fill(settings, args.cdrs)
        rates = [run_once(settings, args.cdrs, run, policy) for run in range(args.runs)]
        print(f"sink throughput: median {statistics.median(rates):,.0f} CDRs/s over {args.runs} runs "
              f"(min {min(rates):,.0f}, max {max(rates):,.0f})")
    finally:
        drop_topics(settings)


if __name__ == "__main__":
    main()
