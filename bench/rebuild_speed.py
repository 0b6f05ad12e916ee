"""Rebuild speed: events/s, CPU and peak RSS of ``callstream rebuild --to``, with a ceiling.

    python bench/rebuild_speed.py --calls 180000 --runs 3 --workers 2

The topic is the simulator's ``--calls`` calls (about 5.6 events each: 180,000
calls are ~1M events), created once and reused (bench/worker_common.py). In
the same run:

- *ceiling*: the raw read of the whole topic by the rebuild's own reader
  (``event_log.read_records``, librdkafka), partition by partition in one
  process, nothing done with the records: no rebuild can be faster than this
  on one core;
- *rebuild*: the real command in its own process (start-up, snapshot, replay
  by ``--workers`` processes, compaction, the move into place) into a fresh
  directory, ``--runs`` times. Wall time, CPU time (user + system of the
  command and its replay processes, from ``wait4``), peak RSS of the process
  tree (the sum over the command and its children, sampled every 50 ms), of
  its largest process, and the tree's peak PSS (sampled every 0.5 s: shared
  library pages counted once, not once per process).

Prints one JSON document (medians, every run, the load average before and
after each run: the machine is shared) and saves it in bench/results.
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

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worker_common import RESULTS, base_settings, prefilled_events  # noqa: E402 - after sys.path

from warehouse import event_log  # noqa: E402 - after sys.path


def ceiling(settings, topic: str) -> dict:
    """Events/s of reading every record of ``topic`` (wall and CPU seconds)."""
    settings = settings.replace(topic_events=topic)
    consumer = event_log.open_consumer(settings)
    try:
        snapshot = event_log.take_snapshot(consumer, settings)
    finally:
        consumer.close()
    began, cpu = time.perf_counter(), time.process_time()
    count = 0
    for partition in sorted(snapshot.end):
        for batch in event_log.read_records(settings, snapshot, partition):
            count += len(batch)
    seconds, cpu_s = time.perf_counter() - began, time.process_time() - cpu
    return {"events": count, "seconds": seconds, "cpu_s": cpu_s, "events_per_s": count / seconds}


def _tree_rss(root: psutil.Process, pss: bool = False) -> tuple[int, int]:
    """(sum, max) RSS in bytes of ``root`` and its descendants; with ``pss``, (sum of PSS, 0).

    A sum of RSS counts the pages the processes share (the same libraries: ~150 MiB per
    replay process) once per process; the sum of PSS counts each page once.
    """
    sizes = []
    for process in [root, *root.children(recursive=True)]:
        try:
            sizes.append(process.memory_full_info().pss if pss else process.memory_info().rss)
        except psutil.Error:
            continue
    return sum(sizes), 0 if pss else max(sizes, default=0)


def run_once(topic: str, target: Path, workers: int) -> dict:
    """One ``callstream rebuild --to target`` process: wall, CPU, peak RSS."""
    # Output topics that do not exist: the rebuild only reads call-events.
    names = {f"--topic-{kind}": f"{topic}-absent-{kind}" for kind in ("cdrs", "alerts", "dlq")}
    command = [sys.executable, "-m", "callstream.cli", "rebuild", "--topic-events", topic, "--workers",
               str(workers), "--to", str(target), "--warehouse", str(target.parent / "no-live-warehouse"),
               *[item for pair in names.items() for item in pair]]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONPATH=str(ROOT)))
    watched, peak_sum, peak_max, peak_pss, tick = psutil.Process(process.pid), 0, 0, 0, 0
    while True:
        try:
            total, largest = _tree_rss(watched)
            if tick % 10 == 0:  # reading smaps costs more: every 0.5 s
                peak_pss = max(peak_pss, _tree_rss(watched, pss=True)[0])
        except psutil.Error:
            total = largest = 0
        tick += 1
        peak_sum, peak_max = max(peak_sum, total), max(peak_max, largest)
        try:
            # wait4 reaps it and gives the CPU of it and its (waited-for) children.
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        except ChildProcessError:
            raise SystemExit("the rebuild process vanished") from None
        if pid:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    err = process.stderr.read()
    if process.returncode != 0:
        raise SystemExit(f"callstream rebuild failed: {err}")
    print(err.strip(), file=sys.stderr)
    return {"seconds": elapsed, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": peak_sum / 2**20,
            "peak_rss_largest_process_mib": peak_max / 2**20, "peak_pss_mib": peak_pss / 2**20,
            "load_before": load_before,
            "load_after": os.getloadavg()[0], "summary": err.strip().splitlines()[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=180_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    settings = base_settings()
    topic = prefilled_events(settings, args.calls, args.seed)
    top = ceiling(settings, topic)
    events = top["events"]
    runs = []
    (ROOT / "var").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "var") as scratch:
        for n in range(args.runs):
            run = run_once(topic, Path(scratch) / f"run-{n}", args.workers)
            run["events_per_s"] = events / run["seconds"]
            run["cpu_us_per_event"] = run["cpu_s"] / events * 1e6
            runs.append(run)
    result = {"topic": topic, "events": events, "workers": args.workers, "cpus": os.cpu_count(),
              "ceiling_raw_read": top, "runs": runs,
              "events_per_s_median": statistics.median(r["events_per_s"] for r in runs),
              "seconds_median": statistics.median(r["seconds"] for r in runs),
              "cpu_s_median": statistics.median(r["cpu_s"] for r in runs),
              "peak_rss_mib_max": max(r["peak_rss_mib"] for r in runs),
              "peak_pss_mib_max": max(r["peak_pss_mib"] for r in runs),
              "measured_at": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"rebuild_speed-c{args.calls}-w{args.workers}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
