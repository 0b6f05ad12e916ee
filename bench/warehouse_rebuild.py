"""Rebuild throughput: ``callstream rebuild --to`` over a ~1M-event ``call-events`` topic.

    python bench/warehouse_rebuild.py --calls 180000 --runs 3

The topic is the simulator's ``--calls`` calls (about 5.6 events each, with its
default faults), created once and reused (bench/worker_common.py). Each run is
the real command in its own process (start-up, snapshot, replay, compaction
and the move into place included) into a fresh directory; events/s is the
topic's messages over the process's wall time, peak RSS is sampled with
psutil. Prints one JSON document and saves it in bench/results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from warehouse_common import watch_peak_rss
from worker_common import RESULTS, base_settings, end_offsets, prefilled_events

ROOT = Path(__file__).resolve().parent.parent


def run_once(topic: str, target: Path) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of one ``callstream rebuild --to target`` process."""
    # Output topics that do not exist: the rebuild only reads call-events.
    names = {f"--topic-{kind}": f"{topic}-absent-{kind}" for kind in ("cdrs", "alerts", "dlq")}
    command = [sys.executable, "-m", "callstream.cli", "rebuild", "--no-progress", "--topic-events", topic,
               "--to", str(target), "--warehouse", str(target.parent / "no-live-warehouse"),
               *[item for pair in names.items() for item in pair]]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = watch_peak_rss(process, 0.05)
    elapsed = time.perf_counter() - started
    err = process.stderr.read()
    if process.wait() != 0:
        raise SystemExit(f"callstream rebuild failed: {err}")
    print(err.strip(), file=sys.stderr)
    return elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=180_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = base_settings()
    topic = prefilled_events(settings, args.calls, args.seed)
    events = sum(end_offsets(settings, topic).values())
    runs = []
    with tempfile.TemporaryDirectory(dir=ROOT / "var") as scratch:
        for n in range(args.runs):
            load = os.getloadavg()[0]
            seconds, rss = run_once(topic, Path(scratch) / f"run-{n}")
            runs.append({"seconds": seconds, "events_per_s": events / seconds, "peak_rss_mib": rss,
                         "load_before": load})
    result = {"topic": topic, "events": events, "runs": runs,
              "events_per_s_median": statistics.median(r["events_per_s"] for r in runs),
              "seconds_median": statistics.median(r["seconds"] for r in runs),
              "peak_rss_mib_max": max(r["peak_rss_mib"] for r in runs),
              "measured_at": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "warehouse_rebuild.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
