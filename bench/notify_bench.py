"""callstream notify: alert -> notification latency, catch-up speed, RSS.

    python bench/notify_bench.py [--rate 100] [--seconds 60] [--catch-up 1000000] [--portals 50] [--runs 1]
                                 [--no-latency]

1. Latency: notify runs (rules: one json:// route, group_s 0) against a local
   HTTP receiver; alerts are produced at --rate per second for --seconds. For
   each alert: receive time at the receiver - the alert message's timestamp
   (CreateTime, set by the producer on this machine). p50 / p95 / max.
2. Catch-up: notify is stopped; --catch-up alerts arrive (message times
   spread over the last hour, --portals portals); notify starts again with
   grouping on (group_s 300) and the clock runs from its start until every
   alert is settled (its status: nothing left to read, nothing owed). Alerts/s =
   alerts / that time; the receiver's message count is printed too.
   With --runs N the catch-up is repeated N times (each run on its own alerts topic) and the median
   printed. notify's CPU time (user + system, all its threads) is printed beside the wall time, and
   the load average of the machine (1 min) at the end of each run.
3. RSS: notify's resident memory sampled every 0.2 s (psutil) in both phases.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import orjson
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.config import SETTINGS, Settings  # noqa: E402 - after the sys.path line that makes the repository importable
from notify.status import read_status  # noqa: E402 - after the sys.path line that makes the repository importable
from streams import topics  # noqa: E402 - after the sys.path line that makes the repository importable
from tests.integration.notify_support import HttpReceiver  # noqa: E402 - after the sys.path line that makes the repository importable


def env_of(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLSTREAM_")}
    for setting in SETTINGS:
        value = getattr(settings, setting.name)
        if value is not None:
            env[setting.env] = str(value)
    env.update(extra, PYTHONPATH=str(ROOT))
    return env


class Notify:
    """``callstream notify`` with its RSS sampled."""

    def __init__(self, settings: Settings, rules: Path, log: Path) -> None:
        self.log = open(log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "callstream.cli", "notify"],
                                     env=env_of(settings, CALLSTREAM_NOTIFY_RULES=str(rules),
                                                CALLSTREAM_NOTIFY_THRESHOLD_INTERVAL_S="0"),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.peak_rss = 0
        self.cpu_s = 0.0
        self.started = time.monotonic()
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        process = psutil.Process(self.proc.pid)
        while not self._stop.is_set():
            try:
                self.peak_rss = max(self.peak_rss, process.memory_info().rss)
                times = process.cpu_times()
                self.cpu_s = times.user + times.system
            except psutil.Error:
                return
            time.sleep(0.2)

    def stop(self) -> None:
        try:
            times = psutil.Process(self.proc.pid).cpu_times()
            self.cpu_s = times.user + times.system
        except psutil.Error:
            pass
        self._stop.set()
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


def alert_value(n: int, portals: int) -> tuple[bytes, bytes]:
    portal = f"portal-{n % portals}"
    call = f"call-{n}"
    value = {"alert_id": f"controller_bypassed:{call}", "type": "controller_bypassed", "portal_id": portal,
             "call_id": call, "ts": "2026-12-03T10:00:00.000Z",
             "detail": {"reason": "timeout", "key_saved_at": "2026-12-02T10:00:00.000Z"}}
    return portal.encode(), orjson.dumps(value)


def producer(settings: Settings):
    from kafka import KafkaProducer

    from common.kafka_clients import producer_options

    return KafkaProducer(**producer_options(settings), linger_ms=5, batch_size=512 * 1024)


def wait_ready(settings: Settings, since_ms: int, timeout_s: float = 300) -> None:
    """Until notify published its first status (it publishes once it reads alerts)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = read_status(settings)
        if status and status["at_ms"] > since_ms:
            return
        time.sleep(0.5)
    raise SystemExit("notify did not start in time")


def wait_settled(settings: Settings, timeout_s: float, since_ms: int) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = read_status(settings)
        if status and status["at_ms"] > since_ms and status.get("unsettled") == 0:
            return status
        time.sleep(0.5)
    raise SystemExit("notify did not settle in time")


def latency(settings: Settings, rules_dir: Path, rate: float, seconds: float) -> tuple[list[float], int]:
    receiver = HttpReceiver()
    rules = rules_dir / "latency.toml"
    rules.write_text(f'[[route]]\nchannels = ["json://127.0.0.1:{receiver.port}/hook"]\ngroup_s = 0\n')
    since = int(time.time() * 1000)
    notify = Notify(settings, rules, rules_dir / "notify-latency.log")
    try:
        wait_ready(settings, since)  # start-up done: ledger read, first start recorded, alerts open
        send = producer(settings)
        sent: dict[str, int] = {}
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < seconds:
            wait = start + n / rate - time.monotonic()
            if wait > 0:  # one reading of the clock: two could give a negative sleep (seen on a loaded machine)
                time.sleep(wait)
            key, value = alert_value(10_000_000 + n, 50)
            stamp = int(time.time() * 1000)
            send.send(settings.topic_alerts, key=key, value=value, timestamp_ms=stamp)
            sent[f"controller_bypassed:call-{10_000_000 + n}"] = stamp
            n += 1
        send.flush()
        deadline = time.monotonic() + 60
        while len(receiver.requests) < n and time.monotonic() < deadline:
            time.sleep(0.2)
        delays = []
        for request in receiver.requests:
            body = orjson.loads(request["body"])["message"]
            alert_id = body.split("Alert: ", 1)[1].split(" ", 1)[0]
            delays.append(request["at"] * 1000 - sent[alert_id])
        return delays, notify.peak_rss
    finally:
        notify.stop()
        receiver.close()


def catch_up(settings: Settings, rules_dir: Path, count: int, portals: int) -> dict:
    receiver = HttpReceiver()
    rules = rules_dir / "catch-up.toml"
    rules.write_text(f'[[route]]\nchannels = ["json://127.0.0.1:{receiver.port}/hook"]\ngroup_s = 300\n')
    send = producer(settings)
    now = int(time.time() * 1000)
    began = time.monotonic()
    for n in range(count):  # message times over an hour ending 10 min ago: every grouping window has ended
        key, value = alert_value(n, portals)
        send.send(settings.topic_alerts, key=key, value=value, timestamp_ms=now - 4_200_000 + n * 3_600_000 // count)
    send.flush()
    print(f"  produced {count} alerts in {time.monotonic() - began:.1f} s", flush=True)
    since = int(time.time() * 1000)
    notify = Notify(settings, rules, rules_dir / "notify-catch-up.log")
    try:
        wait_settled(settings, 1800, since)
        elapsed = time.monotonic() - notify.started
        cpu_s = psutil.Process(notify.proc.pid).cpu_times()
        return {"rate": count / elapsed, "wall_s": elapsed, "cpu_s": cpu_s.user + cpu_s.system,
                "rss": notify.peak_rss, "messages": len(receiver.requests), "load": os.getloadavg()[0]}
    finally:
        notify.stop()
        receiver.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--catch-up", type=int, default=1_000_000)
    parser.add_argument("--portals", type=int, default=50)
    parser.add_argument("--runs", type=int, default=1, help="catch-up runs (the median is printed)")
    parser.add_argument("--no-latency", action="store_true", help="only the catch-up")
    args = parser.parse_args()
    base = Settings.from_env()
    if not args.no_latency:
        with bench_topic(base) as settings:
            work = Path(tempfile.mkdtemp(prefix="notify-bench-"))
            delays, rss1 = latency(settings, work, args.rate, args.seconds)
            q = statistics.quantiles(delays, n=100)
            print(f"latency at {args.rate:.0f} alerts/s over {args.seconds:.0f} s, {len(delays)} alerts: "
                  f"p50 {q[49]:.0f} ms, p95 {q[94]:.0f} ms, max {max(delays):.0f} ms; peak RSS {rss1 / 2**20:.0f} MiB; "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
    runs = []
    for _ in range(args.runs):
        with bench_topic(base) as settings:
            work = Path(tempfile.mkdtemp(prefix="notify-bench-"))
            first_start(settings, work)
            run = catch_up(settings, work, args.catch_up, args.portals)
            runs.append(run)
            print(f"catch-up of {args.catch_up} alerts (group_s 300, {args.portals} portals): {run['rate']:,.0f} "
                  f"alerts/s from notify's start ({run['wall_s']:.1f} s wall, {run['cpu_s']:.1f} s CPU of notify), "
                  f"{run['messages']} messages sent; peak RSS {run['rss'] / 2**20:.0f} MiB; "
                  f"load average {run['load']:.1f}", flush=True)
    if len(runs) > 1:
        rates = sorted(r["rate"] for r in runs)
        print(f"catch-up median {statistics.median(rates):,.0f} alerts/s over {len(runs)} runs "
              f"({', '.join(f'{r:,.0f}' for r in rates)}); median CPU "
              f"{statistics.median(r['cpu_s'] for r in runs):.1f} s; peak RSS "
              f"{max(r['rss'] for r in runs) / 2**20:.0f} MiB")


@contextlib.contextmanager
def bench_topic(base: Settings):
    """A fresh alerts topic (8 partitions) and, afterwards, it and notify's topics deleted."""
    settings = base.replace(topic_alerts=f"bench-notify-{uuid.uuid4().hex[:8]}-alerts")
    topics.ensure_topics(settings, [topics.TopicSpec(settings.topic_alerts, 8, {})])
    try:
        yield settings
    finally:
        deliveries, actions, status = settings.notify_topics
        topics.delete_topics(settings, [settings.topic_alerts, deliveries, actions, status])


def first_start(settings: Settings, work: Path) -> None:
    """notify's very first start on the empty topic (as the latency phase does): the catch-up's alerts
    all arrive after it, so every one is owed a delivery."""
    since = int(time.time() * 1000)
    rules = work / "first.toml"
    rules.write_text("")
    notify = Notify(settings, rules, work / "notify-first.log")
    try:
        wait_ready(settings, since)
    finally:
        notify.stop()


if __name__ == "__main__":
    main()
