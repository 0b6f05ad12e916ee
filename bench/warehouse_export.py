"""Billing export: wall time and peak memory of ``callstream export`` for ~1M and ~100k calls.

    python bench/warehouse_export.py --warehouse var/bench-warehouse --runs 5

Needs a generated warehouse (bench/warehouse_generate.py). The date ranges
are chosen to hold about 1,000,000 and 100,000 calls (newest days first).
Each run is the real command in its own process (start-up included), to a
file; peak RSS is sampled with psutil. For scale, the same rows are also
written by a bare DuckDB ``COPY (SELECT * ...) TO csv`` in this process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from warehouse_common import watch_peak_rss

from warehouse.reader import Reader


def range_holding(reader: Reader, calls: int) -> tuple[date, date, int]:
    """[start, end) of the newest whole days holding at least ``calls`` calls."""
    with reader.cursor() as con:
        days = con.sql("SELECT started_day, count(*) FROM cdrs WHERE started_day IS NOT NULL "
                       "GROUP BY 1 ORDER BY 1 DESC").fetchall()
    total = 0
    for day, count in days:
        total += count
        if total >= calls:
            return day, days[0][0] + timedelta(days=1), total
    raise SystemExit(f"the warehouse holds fewer than {calls} calls")


def run_cli(warehouse: Path, start: date, end: date, out: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MiB, sampled every 10 ms) of one ``callstream export`` process."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "callstream.cli", "export", "--warehouse", str(warehouse),
                                "--from", start.isoformat(), "--to", end.isoformat(), "--out", str(out)],
                               stderr=subprocess.DEVNULL)
    peak = watch_peak_rss(process, 0.01)
    elapsed = time.perf_counter() - started
    if process.wait() != 0:
        raise SystemExit("callstream export failed")
    return elapsed, peak


def bare_copy(reader: Reader, start: date, end: date, out: Path) -> float:
    """Seconds for DuckDB's own COPY of the same rows, no formatting, no ordering."""
    started = time.perf_counter()
    with reader.cursor() as con:
        con.execute("COPY (SELECT * EXCLUDE (recording_urls) FROM cdrs WHERE started_at >= ? AND started_at < ?) "
                    "TO ? (FORMAT csv, HEADER true)", [start, end, str(out)])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=Path("var/bench-warehouse"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    reader = Reader(args.warehouse)
    scratch = Path(tempfile.mkdtemp(prefix="callstream-bench-export-"))
    for target in (1_000_000, 100_000):
        start, end, calls = range_holding(reader, target)
        out = scratch / "billing.csv"
        runs = [run_cli(args.warehouse, start, end, out) for _ in range(args.runs)]
        size = out.stat().st_size / 1e6
        bare = statistics.median(bare_copy(reader, start, end, scratch / "bare.csv") for _ in range(3))
        print(f"export {calls:,} calls [{start}, {end}) -> {size:.0f} MB: "
              f"median {statistics.median(t for t, _ in runs):.2f} s (max {max(t for t, _ in runs):.2f} s), "
              f"peak RSS {max(m for _, m in runs):.0f} MiB; bare DuckDB COPY {bare:.2f} s")
    for path in scratch.iterdir():
        path.unlink()
    scratch.rmdir()


if __name__ == "__main__":
    main()
