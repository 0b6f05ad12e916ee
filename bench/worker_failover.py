"""Failover of the worker group: ``kill -9`` of one of two workers to the first CDR of a moved partition.

    python bench/worker_failover.py [--runs 5] [--rate 300] [--warmup 15] [--timeout 180]

Per run, on fresh topics and a fresh group: two ``callstream worker``
processes and ``callstream simulate --rate R --calls 0`` (R calls per second
in wall-clock time, ~5.5 events each, until stopped). Once both workers hold
partitions and CDRs have flowed for ``--warmup`` seconds, one worker (chosen
at random) is killed with SIGKILL. A probe samples the end offsets of every
``cdrs`` partition every 50 ms. A CDR's partition is its events partition
(both keyed by call id, murmur2, same partition count), so the partitions the
killed worker held are "moved"; the figure is the time from the kill to the
first sample in which a moved partition's ``cdrs`` end offset is beyond where
it was at the kill. Also reported: when the survivor held every partition
(the group's session timeout and rebalance; the rest is the recovery of the
moved partitions' tables from their changelogs). Which member died: the group member whose id is gone
once the survivor holds every partition.

Settings (session timeout, heartbeat) are the workers' own: CALLSTREAM_* in
the environment reaches them. The median over the runs, with every run and the
load average, goes to ``bench/results/worker_failover.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from worker_common import RESULTS, base_settings, cpu_seconds, delete_topics, exit_on_sigterm, join_worker, start_worker

from common.config import Settings
from common.kafka_clients import consumer_options

SAMPLE_S = 0.05


class GroupProbe:
    """End offsets of ``cdrs`` per partition and the group's members with their events partitions."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, request_timeout_ms=15_000)
        self.consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False,
                                      **consumer_options(settings))
        self.cdr_parts = [TopicPartition(settings.topic_cdrs, p) for p in range(settings.output_partitions)]

    def close(self) -> None:
        self.admin.close()
        self.consumer.close()

    def cdr_ends(self) -> dict[int, int]:
        return {tp.partition: end for tp, end in self.consumer.end_offsets(self.cdr_parts).items()}

    def members(self) -> dict[str, set[int]]:
        """member id -> events partitions, once the group is stable ({} while it rebalances)."""
        described = self.admin.describe_groups([self.settings.worker_group])[self.settings.worker_group]
        if described.get("group_state") != "Stable":
            return {}
        held = {}
        for member in described.get("members") or []:
            parts = {p for item in (member.get("member_assignment") or {}).get("assigned_partitions", [])
                     if item["topic"] == self.settings.topic_events for p in item["partitions"]}
            held[member["member_id"]] = parts
        return held


def _wait(predicate, what: str, timeout: float, runs) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in runs:
            if run.process.poll() is not None:
                raise RuntimeError(f"worker exited {run.process.returncode}; see {run.log}")
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"no {what} within {timeout:.0f} s; see {runs[0].log}")


def one_run(settings: Settings, rate: float, warmup: float, timeout: float, rng: random.Random) -> dict:
    """One kill; the seconds to the first CDR of a moved partition, and what surrounded it."""
    runs = [start_worker(settings, None, "bench-fo")]
    simulator = None
    probe = GroupProbe(runs[0].settings)
    try:
        runs.append(join_worker(runs[0], 1))
        events = runs[0].settings.topic_events
        simulator = subprocess.Popen(
            [sys.executable, "-m", "callstream.cli", "simulate", "--rate", str(rate), "--calls", "0",
             "--seed", str(rng.randrange(1_000_000))],
            env=dict(os.environ, CALLSTREAM_TOPIC_EVENTS=events), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        before = _wait(lambda: (lambda m: m if len(m) == 2 and all(m.values()) else None)(probe.members()),
                       "group of two holding partitions", timeout, runs)
        first_cdrs = _wait(lambda: sum(probe.cdr_ends().values()), "CDR", timeout, runs)
        time.sleep(warmup)
        before = _wait(lambda: (lambda m: m if len(m) == 2 and all(m.values()) else None)(probe.members()),
                       "stable group of two", timeout, runs)
        victim, survivor = rng.sample(runs, 2)
        load = os.getloadavg()[0]
        cpu_at_kill = cpu_seconds(survivor.process.pid)
        os.killpg(victim.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim.process.wait(10)
        at_kill = probe.cdr_ends()
        samples: list[tuple[float, dict[int, int]]] = []
        after: dict[str, set[int]] = {}
        took_over = None
        while time.monotonic() - killed_at < timeout:
            if survivor.process.poll() is not None:
                raise RuntimeError(f"the survivor exited; see {survivor.log}")
            samples.append((time.monotonic() - killed_at, probe.cdr_ends()))
            if not after:
                members = probe.members()
                if len(members) == 1 and next(iter(members.values())) == set(range(settings.events_partitions)):
                    after, took_over = members, time.monotonic() - killed_at
            if after and _first_moved_cdr(before, after, at_kill, samples) is not None:
                break
            time.sleep(SAMPLE_S)
        if not after:
            raise TimeoutError(f"the survivor did not take every partition within {timeout:.0f} s")
        moved = _moved(before, after)
        seconds = _first_moved_cdr(before, after, at_kill, samples)
        survivor_cpu = cpu_seconds(survivor.process.pid) - cpu_at_kill
        if seconds is None:
            raise TimeoutError(f"no CDR from the moved partitions {sorted(moved)} within {timeout:.0f} s")
        return {"seconds": seconds, "survivor_assigned_s": took_over, "moved_partitions": sorted(moved),
                "load_at_kill": load, "load_after": os.getloadavg()[0], "survivor_cpu_s": survivor_cpu,
                "cdrs_before_kill": sum(at_kill.values()), "first_cdrs_seen": first_cdrs,
                "group": runs[0].settings.worker_group}
    finally:
        probe.close()
        if simulator is not None:
            os.killpg(simulator.pid, signal.SIGTERM)
            simulator.wait(30)
        for run in runs:
            run.stop()
        delete_topics(settings, runs[0].prefix)
        for run in runs:
            shutil.rmtree(run.settings.state_dir, ignore_errors=True)


def _moved(before: dict[str, set[int]], after: dict[str, set[int]]) -> set[int]:
    """The events partitions of the member that is gone (its id absent once the survivor holds all)."""
    gone = [member for member in before if member not in after]
    if len(gone) != 1:
        raise RuntimeError(f"cannot tell the killed member: before {before}, after {after}")
    return before[gone[0]]


def _first_moved_cdr(before, after, at_kill: dict[int, int], samples) -> float | None:
    moved = _moved(before, after)
    for seconds, ends in samples:
        if any(ends[p] > at_kill[p] for p in moved):
            return seconds
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=300.0, help="calls per second while the workers run")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds of CDRs before the kill")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=None, help="which worker dies, and the simulator's seed")
    args = parser.parse_args()
    if args.runs < 1 or args.rate <= 0 or args.warmup < 0 or args.timeout <= 0:
        parser.error("--runs >= 1, --rate > 0, --warmup >= 0, --timeout > 0")
    exit_on_sigterm()
    settings = base_settings()
    rng = random.Random(args.seed)
    rows = []
    for run in range(args.runs):
        rows.append(one_run(settings, args.rate, args.warmup, args.timeout, rng))
        row = rows[-1]
        print(f"run {run + 1}: first CDR of a moved partition {row['seconds']:.1f} s after the kill; the "
              f"survivor held every partition after {row['survivor_assigned_s']:.1f} s and used "
              f"{row['survivor_cpu_s']:.1f} CPU-s until that CDR (moved "
              f"{row['moved_partitions']}; load {row['load_at_kill']:.1f})", flush=True)
    result = {"runs": rows, "rate_calls_per_s": args.rate, "warmup_s": args.warmup,
              "session_timeout_s": settings.worker_session_timeout_s,
              "heartbeat_s": settings.worker_heartbeat_s,
              "seconds_median": statistics.median(r["seconds"] for r in rows),
              "survivor_assigned_s_median": statistics.median(r["survivor_assigned_s"] for r in rows),
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "worker_failover.json").write_text(json.dumps(result, indent=2))
    print(f"median over {args.runs} runs: {result['seconds_median']:.1f} s from kill -9 to the first CDR "
          f"of a moved partition (session timeout {settings.worker_session_timeout_s:g} s, heartbeat "
          f"{settings.worker_heartbeat_s:g} s; goal <= 30 s)")


if __name__ == "__main__":
    main()
