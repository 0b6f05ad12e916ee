"""Freshness: seconds from a CDR sent to ``cdrs`` until a reader in another process sees it.

    python bench/warehouse_freshness.py --warehouse var/bench-warehouse --samples 200 --runs 3

``callstream sink`` runs in its own process (default flush interval, 0.5 s) on
a copy of the generated warehouse (or an empty one with ``--empty``) while
live CDRs arrive at ``--rate`` per second; this process sends a marked CDR
every 100 ms and polls its own Reader every 20 ms for the marked calls.
Figure: p50 / p95 / max of the delays, median p95 over the runs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from warehouse_common import (
    bench_settings,
    cdr_value,
    copy_warehouse,
    drop_topics,
    feed,
    now_us,
    percentile,
    producer,
    start_sink,
    stop,
)

from warehouse.reader import Reader


def measure(settings, root: Path, samples: int) -> list[float]:
    """Delays (seconds) of ``samples`` marked CDRs."""
    send, rng = producer(settings), random.Random(3)
    reader = Reader(root)
    sent: dict[str, float] = {}
    delays: list[float] = []
    next_send, n = time.monotonic(), 0
    deadline = time.monotonic() + samples * 0.1 + 30
    while len(delays) < samples and time.monotonic() < deadline:
        if n < samples and time.monotonic() >= next_send:
            call_id = f"fresh-{n:06d}"
            send.send(settings.topic_cdrs, key=call_id.encode(), value=cdr_value(rng, call_id, 1, now_us()))
            send.flush()
            sent[call_id] = time.monotonic()
            n, next_send = n + 1, next_send + 0.1
        waiting = list(sent)
        if waiting:
            with reader.cursor() as con:
                seen = con.execute(f"SELECT call_id FROM cdrs WHERE call_id IN ({', '.join('?' * len(waiting))})",
                                   waiting).fetchall()
            now = time.monotonic()
            for (call_id,) in seen:
                delays.append(now - sent.pop(call_id))
        time.sleep(0.02)
    reader.close()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=Path("var/bench-warehouse"))
    parser.add_argument("--empty", action="store_true", help="start from an empty warehouse instead")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0, help="background live CDRs per second")
    args = parser.parse_args()
    p95s = []
    for run in range(args.runs):
        settings = bench_settings("fresh")
        scratch = Path(tempfile.mkdtemp(prefix="callstream-bench-fresh-", dir="var"))
        root = scratch / "warehouse"
        if not args.empty:
            copy_warehouse(args.warehouse, root)
        feeder = multiprocessing.Process(target=feed, args=(settings, args.rate, 3600, run), daemon=True)
        feeder.start()
        sink = start_sink(settings, root)
        try:
            time.sleep(5)  # start-up and first flushes
            delays = measure(settings, root, args.samples)
        finally:
            feeder.terminate()
            stop(sink)
            drop_topics(settings)
            shutil.rmtree(scratch, ignore_errors=True)
        p95s.append(percentile(delays, 95))
        print(f"run {run + 1}: {len(delays)} CDRs, delay median {statistics.median(delays):.2f} s, "
              f"p95 {p95s[-1]:.2f} s, max {max(delays):.2f} s", flush=True)
    print(f"freshness: median p95 {statistics.median(p95s):.2f} s over {args.runs} runs (goal <= 3 s)")


if __name__ == "__main__":
    main()
