"""A long steady run with malformed traffic: the worker's and the sink's RSS and lag over time.

    python bench/worker_soak.py [--minutes 30] [--rate 200] [--malformed 0.01] [--every 10]

Issue 12: "a 30-minute soak at 200 calls/s with 1 % malformed traffic shows
RSS and consumer lag flat". On topics, groups, a state dir and a warehouse of
its own (deleted at the end unless --keep), it starts `callstream worker`,
`callstream sink` and `callstream simulate --rate R --calls 0 --malformed P`
(event time = wall time, so every event passes the contract's ts bounds) and
every --every seconds records: the RSS of the worker, the sink and the
simulator, their CPU use, the worker group's lag on the events topic and its
sweep commands (end offsets minus committed offsets), the sink group's lag
over the four topics it reads, the events produced so far and the load
average. The samples go to bench/results/worker_soak-<time>.csv; the summary
(min / median / max per minute, and least-squares slopes over the second
half: MiB per hour for RSS, messages per hour for lag) is printed and written
to bench/results/worker_soak.json.

A call leaves the worker's memory CALLSTREAM_FORGET_AFTER (1 h) after it
settles, CALLSTREAM_RECORDING_WAIT (1 h) after it ended with a recording
still to come, or CALLSTREAM_INCOMPLETE_AFTER (4 h) after its last event when
it never ends (the simulator's faults make all three); the hot table's steady
size is reached only after the longest of them. The soak shortens them
(--forget-after 300, --recording-wait 300, --incomplete-after 600 s) so that it
is reached in the first half and a leak shows as a slope in the second.
Portals' outage states keep at most 4,096 verdicts each (6 h of event time)
and grow until their cap; the archive's RocksDB memtables fill to their cap
(write buffers per partition) before their first flush.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil
from kafka.errors import KafkaError
from worker_common import RESULTS, ROOT, Lags, base_settings, delete_topics, exit_on_sigterm, rss_mib, start_worker

from streams.app import internal_topic_names
from warehouse.sink import topic_tables

FIELDS = ("t_s", "worker_rss_mib", "sink_rss_mib", "simulate_rss_mib", "worker_cpu_pct", "sink_cpu_pct",
          "events", "dlq", "cdrs", "worker_lag", "sink_lag", "load1")
SERIES = ("worker_rss_mib", "sink_rss_mib", "worker_lag", "sink_lag")


def child_env(settings) -> dict[str, str]:
    """The environment that points a `callstream` child at this run's topics, groups and dirs."""
    return dict(os.environ, CALLSTREAM_TOPIC_EVENTS=settings.topic_events,
                CALLSTREAM_TOPIC_CDRS=settings.topic_cdrs, CALLSTREAM_TOPIC_ALERTS=settings.topic_alerts,
                CALLSTREAM_TOPIC_DLQ=settings.topic_dlq, CALLSTREAM_SINK_GROUP=settings.sink_group,
                CALLSTREAM_WAREHOUSE=settings.warehouse)


def spawn(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "callstream.cli", *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout_s: float = 60) -> int:
    """Signal the process (it leads its own session), wait, SIGKILL if it lingers; its exit code."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


class Cpu:
    """CPU use of a process between two looks, percent of one core."""

    def __init__(self, pid: int) -> None:
        self.process, self.last = psutil.Process(pid), None

    def percent(self) -> float:
        try:
            times = self.process.cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        now = (time.monotonic(), times.user + times.system)
        last, self.last = self.last, now
        return 0.0 if last is None else round(100 * (now[1] - last[1]) / (now[0] - last[0]), 1)


def sample(began: float, procs: dict, cpus: dict, lags: Lags, settings, sink_topics) -> dict:
    """One row of FIELDS; lags are None when the broker could not say (a rebalance)."""
    row = {"t_s": round(time.monotonic() - began, 1), "load1": round(os.getloadavg()[0], 2),
           "worker_rss_mib": round(rss_mib(procs["worker"].pid), 1),
           "sink_rss_mib": round(rss_mib(procs["sink"].pid), 1),
           "simulate_rss_mib": round(rss_mib(procs["simulate"].pid), 1),
           "worker_cpu_pct": cpus["worker"].percent(), "sink_cpu_pct": cpus["sink"].percent()}
    try:
        row.update(events=lags.end(settings.topic_events), dlq=lags.end(settings.topic_dlq),
                   cdrs=lags.end(settings.topic_cdrs))
        row["worker_lag"] = sum(lags.lag(settings.worker_group, t)
                                for t in (settings.topic_events, internal_topic_names(settings)[0]))
        row["sink_lag"] = sum(lags.lag(settings.sink_group, t) for t in sink_topics)
    except KafkaError:
        row.update({k: row.get(k) for k in ("events", "dlq", "cdrs", "worker_lag", "sink_lag")})
    return row


def slope_per_hour(rows: list[dict], key: str) -> float | None:
    """Least-squares slope of ``key`` against time, per hour."""
    points = [(r["t_s"] / 3600, r[key]) for r in rows if r[key] is not None]
    if len(points) < 3:
        return None
    return round(statistics.linear_regression(*zip(*points)).slope, 1)


def summary(rows: list[dict], minutes: float) -> dict:
    """Per-minute min/median/max of each series, second-half slopes and medians, the rates."""
    per_minute = []
    for minute in range(int(minutes) + 1):
        in_minute = [r for r in rows if minute * 60 <= r["t_s"] < (minute + 1) * 60]
        if not in_minute:
            continue
        entry = {"minute": minute + 1}
        for key in SERIES:
            values = [r[key] for r in in_minute if r[key] is not None]
            entry[key] = [min(values), statistics.median(values), max(values)] if values else None
        per_minute.append(entry)
    half = rows[len(rows) // 2:]
    first = rows[:len(rows) // 2]
    span = rows[-1]["t_s"] - rows[0]["t_s"] if len(rows) > 1 else 0

    def rate(key: str) -> float | None:
        return round((rows[-1][key] - rows[0][key]) / span, 1) if span and rows[-1][key] else None

    return {
        "per_minute": per_minute,
        "second_half_slope_per_hour": {key: slope_per_hour(half, key) for key in SERIES},
        "first_half_median": {key: statistics.median(r[key] for r in first if r[key] is not None)
                              for key in SERIES} if first else None,
        "second_half_median": {key: statistics.median(r[key] for r in half if r[key] is not None)
                               for key in SERIES},
        "max": {key: max(r[key] for r in rows if r[key] is not None) for key in SERIES},
        "events_per_s": rate("events"), "dlq_per_s": rate("dlq"), "cdrs_per_s": rate("cdrs"),
    }


def table(result: dict) -> str:
    """The per-minute figures and the slopes as a plain-text table."""
    lines = [f"{'min':>4} | {'worker RSS MiB min/med/max':>27} | {'sink RSS MiB min/med/max':>25} | "
             f"{'worker lag min/med/max':>23} | {'sink lag min/med/max':>22}"]
    for m in result["per_minute"]:
        cells = []
        for key, width, fmt in (("worker_rss_mib", 27, "{:.0f}"), ("sink_rss_mib", 25, "{:.0f}"),
                                ("worker_lag", 23, "{:,}"), ("sink_lag", 22, "{:,}")):
            cells.append(("/".join(fmt.format(v) for v in m[key]) if m[key] else "-").rjust(width))
        lines.append(f"{m['minute']:>4} | " + " | ".join(cells))
    lines.append("second-half slope per hour: " + ", ".join(
        f"{k} {v}" for k, v in result["second_half_slope_per_hour"].items()))
    lines.append(f"rates: {result['events_per_s']} events/s, {result['dlq_per_s']} DLQ/s, "
                 f"{result['cdrs_per_s']} CDRs/s")
    return "\n".join(lines)


def drain_s(procs: dict, lags: Lags, settings, sink_topics, limit_s: float = 300) -> float | None:
    """Seconds until the worker and the sink have committed everything (None: not within the limit)."""
    began = time.monotonic()
    while time.monotonic() - began < limit_s and all(p.poll() is None for p in procs.values()):
        try:
            behind = sum(lags.lag(settings.worker_group, t)
                         for t in (settings.topic_events, internal_topic_names(settings)[0]))
            behind += sum(lags.lag(settings.sink_group, t) for t in sink_topics)
        except KafkaError:
            behind = None
        if behind == 0:
            return round(time.monotonic() - began, 1)
        time.sleep(1)
    return None


def run_soak(settings, args, out_csv: Path) -> dict:
    """Worker, sink and simulator for --minutes, sampled; the samples, the drain, exit codes, the
    simulator's summary."""
    worker = start_worker(settings, None, "bench-soak", ("CALLSTREAM_FORGET_AFTER", str(args.forget_after)),
                          ("CALLSTREAM_RECORDING_WAIT", str(args.recording_wait)),
                          ("CALLSTREAM_INCOMPLETE_AFTER", str(args.incomplete_after)))
    s, logs = worker.settings, ROOT / "var" / "bench"
    sink_topics = list(topic_tables(s))
    lags, procs, outcome = Lags(s), {"worker": worker.process}, {"rows": [], "exit_codes": {}}
    try:
        deadline = time.monotonic() + 120
        while lags.stable_members(s.worker_group) != 1:
            if worker.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not join its group; see {worker.log}")
            time.sleep(0.5)
        procs["sink"] = spawn(["sink"], child_env(s), logs / f"{worker.prefix}-sink.log")
        procs["simulate"] = spawn(["simulate", "--rate", str(args.rate), "--calls", "0", "--malformed",
                                   str(args.malformed), "--seed", str(args.seed)],
                                  child_env(s), logs / f"{worker.prefix}-simulate.log")
        cpus = {name: Cpu(procs[name].pid) for name in ("worker", "sink")}
        rows, began = outcome["rows"], time.monotonic()
        with open(out_csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, FIELDS)
            writer.writeheader()
            while time.monotonic() - began < args.minutes * 60:
                dead = [name for name, p in procs.items() if p.poll() is not None]
                if dead:
                    raise RuntimeError(f"{dead} exited; see the logs under {logs}/{worker.prefix}*")
                rows.append(sample(began, procs, cpus, lags, s, sink_topics))
                writer.writerow(rows[-1])
                handle.flush()
                time.sleep(max(0.0, began + len(rows) * args.every - time.monotonic()))
        outcome["exit_codes"]["simulate"] = stop(procs.pop("simulate"), signal.SIGINT)
        outcome["drain_s"] = drain_s(procs, lags, s, sink_topics)
        return outcome
    finally:
        for name, process in procs.items():
            sig = signal.SIGINT if name == "simulate" else signal.SIGTERM
            outcome["exit_codes"][name] = stop(process, sig)
        lags.close()
        lines = (logs / f"{worker.prefix}-simulate.log").read_text(errors="replace").splitlines()
        outcome["simulate_summary"] = next((x for x in reversed(lines) if x.startswith("simulate:")), None)
        if not args.keep:
            delete_topics(s, worker.prefix)
            shutil.rmtree(s.state_dir, ignore_errors=True)
            shutil.rmtree(s.warehouse, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=200, help="calls per second (default 200)")
    parser.add_argument("--malformed", type=float, default=0.01)
    parser.add_argument("--every", type=float, default=10, help="seconds between samples (default 10)")
    parser.add_argument("--forget-after", type=float, default=300,
                        help="the worker's CALLSTREAM_FORGET_AFTER, seconds (default 300)")
    parser.add_argument("--recording-wait", type=float, default=300,
                        help="the worker's CALLSTREAM_RECORDING_WAIT, seconds (default 300)")
    parser.add_argument("--incomplete-after", type=float, default=600,
                        help="the worker's CALLSTREAM_INCOMPLETE_AFTER, seconds (default 600)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--keep", action="store_true", help="keep the topics, state and warehouse")
    args = parser.parse_args()
    exit_on_sigterm()
    settings = base_settings()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out_csv = RESULTS / f"worker_soak-{stamp}.csv"
    load_before = [round(x, 2) for x in os.getloadavg()]
    outcome = run_soak(settings, args, out_csv)
    rows = outcome.pop("rows")
    result = {"minutes": args.minutes, "rate": args.rate, "malformed": args.malformed,
              "forget_after": args.forget_after, "recording_wait": args.recording_wait,
              "incomplete_after": args.incomplete_after, "every_s": args.every, "samples": len(rows),
              **summary(rows, args.minutes), **outcome, "csv": str(out_csv),
              "load_before": load_before, "load_after": [round(x, 2) for x in os.getloadavg()],
              "started_at": stamp}
    (RESULTS / "worker_soak.json").write_text(json.dumps(result, indent=2))
    print(table(result))
    print(f"{result['simulate_summary']}\nworker and sink caught up {result['drain_s']} s after the "
          f"simulator stopped; exit codes {result['exit_codes']}")
    print(f"load average {load_before} at start, {result['load_after']} at the end; samples in {out_csv}")


if __name__ == "__main__":
    main()
