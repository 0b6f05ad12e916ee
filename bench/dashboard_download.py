"""Dashboard CSV download: peak RSS of ``callstream dashboard`` while it serves a big download.

    python bench/warehouse_generate.py --rows 2000000 --out var/bench-download
    python bench/dashboard_download.py --warehouse var/bench-download --calls 1000000

Starts the real ``callstream dashboard`` in its own process (loopback, a free
port, ``CALLSTREAM_DASH_DOWNLOAD_MAX_ROWS`` raised so the download is allowed),
asks ``/download/calls.csv`` for the newest whole days holding at least
``--calls`` calls, reads the response to the end (counting bytes, keeping
none), and samples the dashboard's RSS every 10 ms from start to finish:
idle after start-up and the first page, and peak during the download.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import date
from pathlib import Path
from urllib.parse import quote

import psutil

from warehouse.reader import Reader


def range_holding(warehouse: Path, calls: int) -> tuple[date, date, int]:
    """[first, last] UTC days (inclusive, as the picker sends them) of the newest days with >= ``calls`` calls."""
    with Reader(warehouse) as reader, reader.cursor() as con:
        days = con.sql("SELECT started_day, sum(calls) FROM cdrs_daily WHERE started_day IS NOT NULL "
                       "GROUP BY 1 ORDER BY 1 DESC").fetchall()
    total = 0
    for day, count in days:
        total += int(count)
        if total >= calls:
            return day, days[0][0], total
    raise SystemExit(f"the warehouse holds fewer than {calls} calls")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PeakRss(threading.Thread):
    """Samples a process's RSS every ``every_s`` until stopped; ``peak`` in MiB."""

    def __init__(self, pid: int, every_s: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.process, self.every_s, self.peak, self.done = psutil.Process(pid), every_s, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every_s):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.NoSuchProcess:
                return

    def stop(self) -> float:
        self.done.set()
        self.join()
        return self.peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=Path("var/bench-download"))
    parser.add_argument("--calls", type=int, default=1_000_000)
    args = parser.parse_args()
    first, last, calls = range_holding(args.warehouse, args.calls)
    port = free_port()
    env = {**os.environ, "CALLSTREAM_WAREHOUSE": str(args.warehouse), "CALLSTREAM_DASH_PORT": str(port),
           "CALLSTREAM_DASH_DOWNLOAD_MAX_ROWS": str(calls + 1)}
    dashboard = subprocess.Popen([sys.executable, "-m", "callstream.cli", "dashboard"], env=env,
                                 stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        urllib.request.urlopen(base + "/calls", timeout=30).read()
        idle = psutil.Process(dashboard.pid).memory_info().rss / 2**20
        watcher = PeakRss(dashboard.pid)
        watcher.start()
        q = quote(json.dumps({"start": first.isoformat(), "end": last.isoformat()}))
        started, size = time.perf_counter(), 0
        with urllib.request.urlopen(f"{base}/download/calls.csv?q={q}", timeout=600) as reply:
            while block := reply.read(1 << 20):
                size += len(block)
        elapsed, peak = time.perf_counter() - started, watcher.stop()
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)
    print(f"{calls:,} calls ({first} .. {last}), {size / 2**20:.0f} MiB of CSV in {elapsed:.1f} s; "
          f"dashboard RSS idle {idle:.0f} MiB, peak during the download {peak:.0f} MiB")


if __name__ == "__main__":
    main()
