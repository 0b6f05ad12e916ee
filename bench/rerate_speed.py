"""Re-rating speed: CDRs/s of the SQL rating and of ``callstream rerate``, at several million CDRs.

    python bench/rerate_speed.py --rows 4000000 --runs 3

A warehouse of ``--rows`` CDRs over a year (bench/warehouse_generate.py, kept
in var/bench-rerate-<rows> and reused) is re-rated with the packaged tariffs:

- *rating*: the rating query alone (warehouse/rerate_sql.py) over every CDR,
  already in a DuckDB table, materialised into another: CDRs/s, wall and CPU
  (user + system of this process: DuckDB's threads run in it);
- *ceiling*: in the same run, the same table copied with the same columns
  and no rating (what materialising the result costs by itself);
- *command*: ``callstream rerate --from <first day> --to <last day> --into``
  as a process: the whole year, end to end (hard links, the cdrs base folded,
  every month rewritten with its rollups and call index, the report).

Medians of ``--runs`` runs; the load average before each run (the machine is
shared). Prints one JSON document and saves it in bench/results.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from warehouse_generate import generate  # noqa: E402 - after sys.path

from common.config import Settings  # noqa: E402 - after sys.path
from streams.domain.rating import load_tariffs  # noqa: E402 - after sys.path
from warehouse.reader import Reader  # noqa: E402 - after sys.path
from warehouse.rerate_sql import load_tariff_table, rating_query  # noqa: E402 - after sys.path

RESULTS = ROOT / "bench" / "results"
END = datetime(2026, 12, 1, tzinfo=UTC)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(con, sql: str) -> tuple[float, float]:
    began, cpu = time.perf_counter(), _cpu()
    con.execute(sql)
    return time.perf_counter() - began, _cpu() - cpu


def rating_runs(root: Path, runs: int) -> tuple[int, list[dict]]:
    """The rating query and the copy ceiling, ``runs`` times each, over every CDR of ``root``."""
    tariffs = load_tariffs(Settings.from_env({}).tariffs_path)
    out = []
    with Reader(root) as reader, reader.cursor() as con:
        con.execute("CREATE TEMP TABLE period AS SELECT * FROM cdrs")
        rows = con.execute("SELECT count(*) FROM period").fetchall()[0][0]
        scale = load_tariff_table(con, tariffs)
        query = rating_query("period", scale, tariffs)
        for _ in range(runs):
            load = os.getloadavg()[0]
            seconds, cpu = _timed(con, f"CREATE OR REPLACE TEMP TABLE rated AS {query}")
            copy_s, copy_cpu = _timed(con, "CREATE OR REPLACE TEMP TABLE copied AS SELECT call_id, region, "
                                           "rate_per_min, rate_per_min_text, billed_s, cost, cost_text, "
                                           "currency FROM period")
            out.append({"seconds": seconds, "cpu_s": cpu, "cdrs_per_s": rows / seconds, "copy_seconds": copy_s,
                        "copy_cpu_s": copy_cpu, "copy_cdrs_per_s": rows / copy_s, "load_before": load})
            print(json.dumps(out[-1]), file=sys.stderr, flush=True)  # a run's figures as soon as known
    return rows, out


def command_run(root: Path, rows: int, scratch: Path, n: int) -> dict:
    """``callstream rerate`` of the whole year into a new directory."""
    first, last = (END - timedelta(days=400)).date(), END.date()
    command = [sys.executable, "-m", "callstream.cli", "rerate", "--warehouse", str(root), "--from", str(first),
               "--to", str(last), "--into", str(scratch / f"out-{n}"), "--report", str(scratch / f"report-{n}")]
    load = os.getloadavg()[0]
    began = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        raise SystemExit(f"callstream rerate failed: {run.stderr}")
    print(run.stderr.strip(), file=sys.stderr)
    return {"seconds": seconds, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "cdrs_per_s": rows / seconds, "load_before": load, "summary": run.stderr.strip().splitlines()[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--command-runs", type=int, default=1)
    args = parser.parse_args()
    root = ROOT / "var" / f"bench-rerate-{args.rows}"
    if not (root / "manifest.json").exists():
        root.mkdir(parents=True, exist_ok=True)
        generate(root, args.rows, 50, END)
    rows, rating = rating_runs(root, args.runs)
    commands = []
    with tempfile.TemporaryDirectory(dir=ROOT / "var") as scratch:
        for n in range(args.command_runs):
            commands.append(command_run(root, rows, Path(scratch), n))
    result = {"rows": rows, "cpus": os.cpu_count(), "rating_runs": rating, "command_runs": commands,
              "rating_cdrs_per_s_median": statistics.median(r["cdrs_per_s"] for r in rating),
              "rating_cpu_s_median": statistics.median(r["cpu_s"] for r in rating),
              "copy_cdrs_per_s_median": statistics.median(r["copy_cdrs_per_s"] for r in rating),
              "command_cdrs_per_s_median": (statistics.median(r["cdrs_per_s"] for r in commands)
                                            if commands else None),  # --command-runs 0
              "measured_at": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"rerate_speed-{args.rows}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
