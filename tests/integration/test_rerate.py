"""``callstream rerate`` on a real warehouse (real DuckDB and Parquet files, the CLI as a process).

The warehouse holds the sink's rows of CDRs the domain core built (several
versions per call, some calls moved to another month), written in two
batches and partly compacted, so the cdrs table has base and delta files.
A re-rating of one day with a changed tariff table must give every call of
that day exactly the core's rating of its fields, leave every other call,
column and table as it was, keep the rollups equal to the calls, report the
changed calls like a rebuild, and swap in as a new generation.
"""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from common.config import Settings
from streams.domain.rating import load_tariffs, rate_call
from tests.integration.sink_data import assert_rollup_exact, build, differences, table_arrow
from warehouse import compaction
from warehouse.decode import RawBatch, decode_json
from warehouse.writer import Batch, Writer

pytestmark = pytest.mark.integration

RATED = ("region", "rate_per_min", "rate_per_min_text", "billed_s", "cost", "cost_text", "currency")
DAY = "2026-11-24"


def _moved(value: bytes) -> bytes:
    """The same CDR as another call, started on 5 October (outside the re-rated day)."""
    cdr = orjson.loads(value)
    cdr["call_id"] += "-oct"
    for name in ("started_at", "answered_at", "ended_at"):
        if cdr.get(name):
            cdr[name] = cdr[name].replace(DAY, "2026-10-05")
    return orjson.dumps(cdr)


def _warehouse(root: Path) -> None:
    data = build(calls=500, seed="rerate")
    values = [v for _k, v in data.cdrs]
    values += [_moved(v) for v in values if v.startswith(b"{") and b'"started_at":"' + DAY.encode() in v][::3]
    with Writer(root, grace_s=0.0) as writer:
        middle = len(values) // 2
        for start, half in ((0, values[:middle]), (middle, values[middle:])):
            raw = RawBatch("cdrs")
            for offset, value in enumerate(half, start=start):
                raw.add(0, offset, 1_795_503_600_000, None, value)
            con = writer.cursor()
            try:
                good, bad = decode_json(con, "cdrs", raw)
            finally:
                con.close()
            writer.write(Batch({"cdrs": good, "rejects": bad}))
            if start == 0:
                compaction.major(writer, "cdrs")  # base files, then deltas on top


def _cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLSTREAM_")} | (env_extra or {})
    return subprocess.run([sys.executable, "-m", "callstream.cli", "rerate", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def _tariffs(tmp_path: Path) -> Path:
    text = Settings.from_env({}).tariffs_path.read_text()
    changed = (text.replace("operator,outbound,79,Russia mobile,2.20,0.00,1,0,RUB,2025-07-01",
                            "operator,outbound,79,Russia mobile,2.47,0.35,6,12,RUB,2025-07-01")
               .replace("operator,outbound,7495,Moscow landline,1.00,0.00,1,0,RUB,2025-07-01",
                        "operator,outbound,7495,Moscow landline,1.005,0.00,1,0,RUB,2025-07-01")
               .replace("operator,outbound,7,Russia landline,1.35,0.00,1,0,RUB,2025-07-01",
                        "operator,outbound,7,Russia landline,1.355,0.10,1,0,RUB,2025-07-01"))
    assert changed != text
    path = tmp_path / "tariffs.csv"
    path.write_text(changed)
    return path


def _core(tariffs, row: dict) -> tuple:
    if row["started_at"] is None:
        return (None, None, None, 0, Decimal("0.00"), "0.00", None)
    at_us = int(row["started_at"].timestamp() * 1_000_000)
    r = rate_call(tariffs, line=row["line"], direction=row["direction"], to=row["to"],
                  line_number=row["line_number"], started_at_us=at_us, talk_s=row["talk_s"])
    text = None if r.rate_per_min is None else format(r.rate_per_min, "f")
    return (r.region, None if text is None else Decimal(text), text, r.billed_s, r.cost,
            format(r.cost, "f"), r.currency)


def test_a_day_is_re_rated_as_the_core_rates_and_nothing_else_moves(tmp_path):
    live, out, reports = tmp_path / "warehouse", tmp_path / "rerated", tmp_path / "reports"
    _warehouse(live)
    tariffs_path = _tariffs(tmp_path)
    run = _cli("--warehouse", str(live), "--tariffs", str(tariffs_path), "--from", DAY, "--to", DAY,
               "--into", str(out), "--report", str(reports))
    assert run.returncode == 0, run.stderr

    tariffs = load_tariffs(tariffs_path)
    before = {r["call_id"]: r for r in table_arrow(live, "cdrs").to_pylist()}
    after = {r["call_id"]: r for r in table_arrow(out, "cdrs").to_pylist()}
    assert before.keys() == after.keys() and len(before) > 500
    changed = in_day = 0
    for call_id, old in before.items():
        new = after[call_id]
        assert {k: v for k, v in new.items() if k not in RATED} == \
            {k: v for k, v in old.items() if k not in RATED}, call_id
        if old["started_day"] is not None and str(old["started_day"]) == DAY:
            in_day += 1
            assert tuple(new[c] for c in RATED) == _core(tariffs, old), call_id
            changed += new["cost"] != old["cost"]
        else:
            assert new == old, call_id
    assert in_day > 300 and changed > 20 and len(before) - in_day > 50
    assert f"cost changed: {changed:,};" in run.stdout
    assert len(list(reports.glob("rerating-report-*.csv"))) == 1
    for table in ("events", "alerts", "dlq", "rejects"):
        assert differences(live, out, table) == (0, 0), table
    assert_rollup_exact(out)

    swapped = _cli("--warehouse", str(live), "--tariffs", str(tariffs_path), "--from", DAY, "--to", DAY,
                   "--report", str(reports))
    assert swapped.returncode == 0, swapped.stderr
    assert live.is_symlink() and "swapped in" in swapped.stderr
    assert differences(live, out, "cdrs") == (0, 0)


@pytest.mark.parametrize("args, message", [
    (("--from", "2026-11-24", "--to", "2026-11-2"), "expected a day as YYYY-MM-DD"),
    (("--from", "2026-11-24", "--to", "2026-11-23"), "is before --from"),
    (("--from", "2026-02-30", "--to", "2026-03-01"), "expected a day as YYYY-MM-DD"),
    (("--from", "2026-11-24", "--to", "2026-11-24", "--tariffs", "/nonexistent.csv"), "bad tariff file"),
    (("--from", "2026-11-24", "--to", "2026-11-24"), "no warehouse at"),
])
def test_cli_errors_are_one_line(tmp_path, args, message):
    run = _cli("--warehouse", str(tmp_path / "none"), *args)
    assert run.returncode in (1, 2) and run.stdout == ""
    assert run.stderr.count("\n") == 1 and message in run.stderr, run.stderr
