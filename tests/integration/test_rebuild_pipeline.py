"""``callstream rebuild`` against a live pipeline on the real broker.

Simulated traffic (duplicates, shuffled and late events, malformed messages,
Controller outages) plus calls that time out — one of them completed by a late
event after its timeout — goes through ``callstream worker`` and
``callstream sink`` subprocesses into a live warehouse. Then:

1. a rebuild with the same tariffs (``--to``) holds exactly the live tables
   (``EXCEPT ALL`` both ways on cdrs, alerts, events, DLQ records and the
   daily rollup; only the positions in the output topics differ), and a sink
   started on it has nothing left to add;
2. a rebuild with one rate changed is swapped in over the live warehouse: only
   the calls rated by that row change cost, by the hand-computed amount, and
   the saved report's totals are ``SUM(new - old)`` computed in SQL.
"""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from streams.domain.timefmt import parse_ts_us
from streams.simulator import Faults, Knobs, generate_all
from tests.integration.sink_data import POSITIONS, table_differences
from tests.integration.worker_expect import call_events
from tests.integration.worker_harness import (
    Fleet,
    Probe,
    produce,
    settings_env,
    wait_for,
    wait_until_done,
    worker_settings,
)
from warehouse import duck
from warehouse.layout import load_manifest
from warehouse.reader import Reader

pytestmark = pytest.mark.integration
__all__ = ["worker_settings"]  # the fixture, imported for pytest

START_US = parse_ts_us("2026-11-24T06:00:00Z")
FAULTS = Faults(duplicates=0.05, shuffle=0.3, late_recordings=0.3, malformed=0.02)
KNOBS = Knobs(outage_rate=0.15, stale_key=0.3, license_errors=0.02, dev_copy=0.05, extranet=0.05)
OLD_RATE, NEW_RATE = "2.20", "2.47"  # Russia mobile from 2025-07-01: 1 s increments, no fee


def cli(settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "callstream.cli", *args], env=settings_env(settings),
                          capture_output=True, text=True, timeout=timeout)


def test_a_rebuild_reproduces_the_live_warehouse_then_re_rates_it(worker_settings, tmp_path):
    settings = worker_settings.replace(incomplete_after=2.0, forget_after=2.0)
    live = Path(settings.warehouse)
    _run_live_pipeline(settings, tmp_path)

    same = cli(settings, "rebuild", "--to", str(tmp_path / "rebuilt"), "--report", str(tmp_path))
    assert same.returncode == 0, same.stderr
    assert "cost changed: 0;" in same.stdout and "only in the live warehouse: 0" in same.stdout
    for table in POSITIONS:
        assert table_differences(live, tmp_path / "rebuilt", table) == (0, 0), table
    assert _count(tmp_path / "rebuilt", "alerts WHERE state = 'retracted'") == 0
    for what in ("alerts WHERE type = 'controller_outage'", "dlq", "cdrs WHERE status = 'incomplete'"):
        assert _count(live, what) > 0, what  # the traffic exercised every kind of output
    _a_sink_on_the_rebuild_has_nothing_to_add(settings, tmp_path / "rebuilt")

    tariffs = tmp_path / "tariffs.csv"
    tariffs.write_text(settings.tariffs_path.read_text().replace(
        f"operator,outbound,79,Russia mobile,{OLD_RATE},0.00,1,0,RUB,2025-07-01",
        f"operator,outbound,79,Russia mobile,{NEW_RATE},0.00,1,0,RUB,2025-07-01"))
    with Reader(live) as reader:  # opened before the swap: it must follow it
        swapped = cli(settings, "rebuild", "--tariffs", str(tariffs), "--report", str(tmp_path / "reports"))
        assert swapped.returncode == 0, swapped.stderr
        assert live.is_symlink() and "swapped in" in swapped.stderr
        previous = next(tmp_path.glob("warehouse.gen-before-*"))
        changed = _check_re_rating(previous, live)
        assert f"cost changed: {changed:,};" in swapped.stdout
        with reader.cursor() as con:
            assert con.execute("SELECT count(*) FROM cdrs WHERE rate_per_min_text = ?",
                               [NEW_RATE]).fetchone()[0] > 0
    _check_report(previous, live, tmp_path / "reports", changed)


def _run_live_pipeline(settings, tmp_path: Path) -> None:
    """Simulated traffic and timed-out calls through a worker and a sink into the live warehouse."""
    messages, _ = generate_all(23, 1200, 6, START_US, faults=FAULTS, knobs=KNOBS)
    opened = [call_events(f"open-{i}", START_US + i * 1_000_000, portal="p-0") for i in range(3)]
    late_end = opened[2].pop("call.ended")
    for call in opened[:2]:
        call.pop("call.ended")
    # One broker time for the whole burst, as the worker (started after it) saw it arrive at
    # once: a slow producer must not open gaps the rebuild would take for timeouts.
    _produce_at(settings, [(m.key, m.value) for m in messages]
                + [m for call in opened for m in call.values()], int(time.time() * 1000))
    sink_log = open(tmp_path / "sink.log", "wb")
    sink = subprocess.Popen([sys.executable, "-m", "callstream.cli", "sink", "--flush-interval", "0.2",
                             "--log-level", "WARNING"], env=settings_env(settings),
                            stdout=sink_log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with Fleet(tmp_path) as fleet:
            worker = fleet.start(settings, "worker")
            wait_until_done(settings, [worker], timeout=120)  # quiet for 3 s: the open calls expired
            produce(settings, [late_end])  # open-2 ends after its incomplete CDR went out
            wait_until_done(settings, [worker], timeout=60)
            worker.stop()
        busy = cli(settings, "rebuild", "--no-progress")
        assert busy.returncode == 1 and "stop it first" in busy.stderr, busy.stderr
        _wait_sink_caught_up(settings)
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(30)
        sink_log.close()
    assert sink.returncode == 0, (tmp_path / "sink.log").read_text()


def _produce_at(settings, messages: list[tuple[bytes, bytes]], timestamp_ms: int) -> None:
    """Send (key, value) pairs in order, all with the broker timestamp ``timestamp_ms``."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.bootstrap, acks="all", linger_ms=20,
                             max_request_size=4 * 1024 * 1024, enable_idempotence=True)
    try:
        futures = [producer.send(settings.topic_events, key=key, value=value, timestamp_ms=timestamp_ms)
                   for key, value in messages]
        producer.flush(60)
        for future in futures:
            future.get(timeout=60)
    finally:
        producer.close(10)


def _wait_sink_caught_up(settings) -> None:
    probe = Probe(settings)
    topics = (settings.topic_events, settings.topic_cdrs, settings.topic_alerts, settings.topic_dlq)
    try:
        def caught_up() -> bool:
            manifest = load_manifest(Path(settings.warehouse))
            return manifest is not None and all(
                manifest.offsets.get(t, {}).get(tp.partition, 0) >= end
                for t in topics for tp, end in probe.end_offsets(t).items())
        wait_for(caught_up, "the sink to catch up", timeout=60)
    finally:
        probe.close()


def _rows(root: Path, query: str):
    with Reader(root) as reader, reader.cursor() as con:
        return con.sql(query).to_arrow_table()


def _count(root: Path, what: str) -> int:
    return _rows(root, f"SELECT count(*) AS n FROM {what}").column("n")[0].as_py()


def _a_sink_on_the_rebuild_has_nothing_to_add(settings, rebuilt: Path) -> None:
    before = load_manifest(rebuilt)
    run = cli(settings.replace(warehouse=str(rebuilt), sink_group=settings.sink_group + "-rebuilt"),
              "sink", "--until-caught-up", "--log-level", "WARNING")
    assert run.returncode == 0, run.stderr
    assert load_manifest(rebuilt).files == before.files
    versions = _rows(rebuilt, "SELECT call_id, version, status FROM cdrs WHERE call_id LIKE 'open-%' "
                              "ORDER BY call_id").to_pylist()
    assert versions == [{"call_id": "open-0", "version": 1, "status": "incomplete"},
                        {"call_id": "open-1", "version": 1, "status": "incomplete"},
                        {"call_id": "open-2", "version": 2, "status": "answered"}]


def _check_re_rating(old: Path, new: Path) -> int:
    """Only operator-line Russia mobile calls change cost, each to its hand-computed one; the count."""
    columns = "call_id, line, region, billed_s, cost, rate_per_min_text, started_at"
    before = {r["call_id"]: r for r in _rows(old, f"SELECT {columns} FROM cdrs").to_pylist()}
    after = {r["call_id"]: r for r in _rows(new, f"SELECT {columns} FROM cdrs").to_pylist()}
    assert before.keys() == after.keys()
    changed = 0
    for call_id, was in before.items():
        now = after[call_id]
        if (was["line"], was["region"], was["rate_per_min_text"]) == ("operator", "Russia mobile", OLD_RATE):
            want = (Decimal(NEW_RATE) * was["billed_s"] / 60).quantize(Decimal("0.01"), ROUND_HALF_UP)
            assert (now["cost"], now["rate_per_min_text"]) == (want, NEW_RATE), call_id
        else:
            assert now == was, call_id
        changed += now["cost"] != was["cost"]
    assert changed > 20
    # Nothing but the rating of those calls moved.
    for table in ("events", "alerts", "dlq"):
        assert table_differences(old, new, table) == (0, 0), table
    return changed


def _check_report(old: Path, new: Path, reports: Path, changed: int) -> None:
    """The saved CSV lists the changed calls; its totals are SUM(new - old) computed in SQL."""
    [csv_path] = reports.glob("rerating-report-*.csv")
    text = next(reports.glob("rerating-report-*.txt")).read_text()
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == changed
    by_region, by_portal = defaultdict(Decimal), defaultdict(Decimal)
    for row in rows:
        by_region[row["region"]] += Decimal(row["difference"])
        by_portal[row["portal_id"]] += Decimal(row["difference"])
    con = duck.connect()
    try:
        con.register("o", _rows(old, "SELECT call_id, portal_id, region, cost FROM cdrs"))
        con.register("n", _rows(new, "SELECT call_id, portal_id, region, cost FROM cdrs"))
        for key, totals in (("region", by_region), ("portal_id", by_portal)):
            sql = dict(con.execute(f"SELECT n.{key}, sum(n.cost - o.cost) FROM o JOIN n USING (call_id) "
                                   f"WHERE n.cost <> o.cost GROUP BY 1").fetchall())
            assert sql == dict(totals)
            for name, total in sql.items():
                assert any(name[:28] in line and f"{total:+,.2f}" in line for line in text.splitlines())
    finally:
        con.close()
