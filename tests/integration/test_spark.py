"""Apache Spark reads the warehouse through its Delta Lake logs and agrees with DuckDB and the bill.

A warehouse is written by the real writer in rounds (CDR versions, re-emitted
copies, calls without a start, three months), each round folded into the base
by a major compaction, so the Delta log of ``cdrs`` has a checkpoint and
commits after it. PySpark (local mode, Delta's jars from the Maven cache: no
download) then reads ``<warehouse>/data/cdrs`` as a Delta table — knowing
nothing of the winner rule — and must get:

- the same monthly spend per portal and region (calls, billed seconds, cost),
  and the same call count per status, as DuckDB through the shared queries
  (``warehouse/queries.py``, which read the rollups) and as the billing CSV
  of each month (``warehouse/export.py``);
- a consistent snapshot: CDRs written after the last major compaction are not
  seen by Spark (neither half of them nor any duplicate) until the next major
  publishes them, and then they are.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from common.config import Settings
from streams.domain.events import Event
from streams.domain.rating import load_tariffs
from streams.domain.timefmt import parse_ts_us
from streams.domain.validation import validate
from streams.simulator import Faults, generate_all
from tests.integration.sink_data import Feed, _cdr_versions
from tests.integration.spark_support import delta_jars, spark_session
from warehouse import compaction, delta_log, queries
from warehouse.export import export_to_file
from warehouse.filters import CallFilter
from warehouse.reader import Reader
from warehouse.writer import Writer

pytestmark = pytest.mark.integration

STARTS = ("2026-09-30T15:00:00Z", "2026-10-31T15:00:00Z", "2026-11-30T15:00:00Z")
MONTHS = (datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC),
          datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC),
          datetime(2027, 1, 1, tzinfo=UTC))
ROUNDS = 12  # majors of cdrs: Delta versions 0..12, a checkpoint at 10


def _cdr_messages() -> list[bytes]:
    """Every CDR version of simulated calls over three month ends, in emission order, with re-sent
    copies; every 25th call lost its call.started (an incomplete CDR without a start)."""
    tariffs = load_tariffs(Settings.from_env({}).tariffs_path)
    out: list[bytes] = []
    for n, start in enumerate(STARTS):
        messages, _ = generate_all(f"spark-{n}", 150, 4, parse_ts_us(start),
                                   Faults(duplicates=0.1, late_recordings=0.3))
        by_call: dict[str, list[Event]] = defaultdict(list)
        for message in messages:
            event = validate(message.value, message.key)
            if isinstance(event, Event) and event.event_id not in {e.event_id for e in by_call[event.call_id]}:
                by_call[event.call_id].append(event)
        for k, (_call_id, events) in enumerate(sorted(by_call.items())):
            if k % 25 == 0:
                events = [e for e in events if e.type != "call.started"]
            versions = _cdr_versions(events, tariffs)
            out += versions + versions[-1:] * (k % 5 == 0)
    return out


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("spark")
    session = spark_session(delta_jars(Path(__file__).resolve().parents[2] / "var" / "spark-jars"), scratch)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("spark-warehouse") / "warehouse"
    cdrs = _cdr_messages()
    step = -(-len(cdrs) // ROUNDS)
    with Writer(root) as writer:
        feed = Feed(writer)
        for start in range(0, len(cdrs), step):
            feed.send("cdrs", *cdrs[start:start + step])
            compaction.compact_all(writer)
    return root


def _spark_monthly(spark, table: Path) -> dict:
    rows = spark.sql(
        "SELECT date_format(started_at, 'yyyy-MM') AS month, portal_id, region, currency, count(*) AS calls, "
        f"sum(billed_s) AS billed_s, sum(cost) AS cost FROM delta.`{table}` GROUP BY ALL").collect()
    return {(r.month, r.portal_id, r.region, r.currency): (r.calls, r.billed_s, r.cost) for r in rows}


def _spark_statuses(spark, table: Path, where: str = "") -> dict:
    rows = spark.sql(f"SELECT status, count(*) AS calls FROM delta.`{table}` {where} GROUP BY 1").collect()
    return {r.status: r.calls for r in rows}


def _none(value):
    return None if value is None or value != value else value  # pandas gives NaN for some nulls


def _duck_monthly(root: Path) -> dict:
    with Reader(root) as reader:
        frame = queries.spend_by_portal_region_month(reader)
    return {(_none(r.month), r.portal_id, _none(r.region), _none(r.currency)): (r.calls, r.billed_s, r.cost)
            for r in frame.itertuples()}


def _export_monthly(root: Path, tmp_path: Path) -> tuple[dict, Counter]:
    """Monthly spend per portal and region, and calls per status, from each month's billing CSV."""
    monthly: dict = defaultdict(lambda: [0, 0, Decimal("0.00")])
    statuses: Counter = Counter()
    with Reader(root) as reader:
        for start, end in zip(MONTHS, MONTHS[1:]):
            out = tmp_path / f"billing-{start:%Y-%m}.csv"
            export_to_file(reader, out, start, end)
            for row in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline="")):
                key = (row["started_at"][:7], row["portal_id"], row["region"] or None, row["currency"] or None)
                monthly[key][0] += 1
                monthly[key][1] += int(row["billed_s"])
                monthly[key][2] += Decimal(row["cost"])
                statuses[row["status"]] += 1
    return {k: tuple(v) for k, v in monthly.items()}, statuses


def test_spark_reads_the_same_monthly_spend_and_statuses_as_duckdb_and_the_bill(spark, warehouse, tmp_path):
    table = warehouse / "data" / "cdrs"
    log_dir = table / delta_log.LOG_DIR
    assert (log_dir / f"{10:020d}.checkpoint.parquet").exists()  # Spark starts from a checkpoint
    assert delta_log.read_log(table).version >= 11  # and replays commits after it
    spark_monthly = _spark_monthly(spark, table)
    assert {"2026-09", "2026-10", "2026-11", None} <= {k[0] for k in spark_monthly}
    assert sum(v[0] for k, v in spark_monthly.items() if k[0] is None) > 0  # calls without a start
    assert spark_monthly == _duck_monthly(warehouse)
    billed, billed_statuses = _export_monthly(warehouse, tmp_path)
    assert {k: v for k, v in spark_monthly.items() if k[0] is not None} == billed
    with Reader(warehouse) as reader:
        duck_all = dict(queries.calls_by_status(reader).itertuples(index=False))
        duck_billed = dict(queries.calls_by_status(reader, CallFilter(start=MONTHS[0], end=MONTHS[-1]))
                           .itertuples(index=False))
    assert _spark_statuses(spark, table) == duck_all
    assert "incomplete" in duck_all and len(duck_all) >= 4
    assert _spark_statuses(spark, table, "WHERE started_at IS NOT NULL") == duck_billed == dict(billed_statuses)
    # The log lists exactly the manifest's base files: winners, one row per call.
    assert spark.sql(f"SELECT count(*) AS n, count(DISTINCT call_id) AS d FROM delta.`{table}`").first() \
        .asDict() == {"n": sum(duck_all.values()), "d": sum(duck_all.values())}


def test_spark_sees_new_versions_only_once_a_compaction_publishes_them(spark, warehouse):
    table = warehouse / "data" / "cdrs"
    before = _spark_monthly(spark, table)
    with Reader(warehouse) as reader, reader.cursor() as con:
        calls = con.sql("SELECT call_id, version, cost_text FROM cdrs WHERE started_at IS NOT NULL "
                        "AND status = 'answered' ORDER BY call_id LIMIT 20").fetchall()
    from tests.integration.sink_data import cdr

    with Writer(warehouse) as writer:
        feed = Feed(writer)
        feed.offsets["cdrs"] = 10**9  # after every offset the rounds used
        feed.send("cdrs", *(cdr(call_id, version + 1) for call_id, version, _ in calls))
        assert _spark_monthly(spark, table) == before  # deltas are not published
        assert _duck_monthly(warehouse) != before  # the warehouse's own readers see them at once
        compaction.compact_all(writer)
    assert _spark_monthly(spark, table) == _duck_monthly(warehouse) != before
