"""The warehouse's write path and read path on real files (no broker).

Winner rules before and after compaction, idempotent re-application, the
writer lock, garbage collection, and readers in other processes while the
writer writes, compacts and deletes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from streams.domain.alerts import Alert, alert_to_json
from streams.domain.dlq import encode_dlq
from streams.domain.events import Rejection
from tests.integration.sink_data import Feed, assert_rollup_exact, assert_same_warehouse, cdr, table_arrow
from tests.unit.warehouse_samples import T0
from warehouse import compaction
from warehouse.decode import RawBatch, decode_buffers
from warehouse.layout import DataFile, load_manifest, new_file_path
from warehouse.reader import Reader, WarehouseError
from warehouse.writer import Batch, Writer, WriterBusy

pytestmark = pytest.mark.integration

DAY_US = 86_400_000_000


def cdr_rows(root: Path) -> dict[str, tuple[int, str]]:
    assert_rollup_exact(root)  # whatever the layout, the daily rollup agrees with the calls
    rows = table_arrow(root, "cdrs").to_pylist()
    assert len(rows) == len({r["call_id"] for r in rows}), "one row per call"
    return {r["call_id"]: (r["version"], r["cost_text"]) for r in rows}


def test_highest_version_then_latest_offset_wins_in_every_layout(tmp_path):
    with Writer(tmp_path) as writer:
        feed = Feed(writer)
        feed.send("cdrs", cdr("a", 1), cdr("b", 1))
        feed.send("cdrs", cdr("a", 3, cost="3.00"), cdr("b", 1, cost="1.11"))
        feed.send("cdrs", cdr("a", 2, cost="2.00"), cdr("c", 1, T0 - 40 * DAY_US))
        expected = {"a": (3, "3.00"), "b": (1, "1.11"), "c": (1, "1.53")}
        assert cdr_rows(tmp_path) == expected
        compaction.minor(writer, "cdrs")
        assert len(writer.manifest.table_files("cdrs", "delta")) == 1
        assert cdr_rows(tmp_path) == expected
        compaction.major(writer, "cdrs")
        assert not writer.manifest.table_files("cdrs", "delta")
        assert {f.partition for f in writer.manifest.table_files("cdrs")} == {"2026-10", "2026-11"}
        assert {f.partition for f in writer.manifest.table_files("cdrs_daily")} == {"2026-10", "2026-11"}
        assert cdr_rows(tmp_path) == expected
        feed.send("cdrs", cdr("b", 2, cost="2.22"), cdr("d", 1, None))
        assert cdr_rows(tmp_path) == {**expected, "b": (2, "2.22"), "d": (1, "1.53")}


def test_a_stale_version_never_survives_compaction(tmp_path):
    with Writer(tmp_path) as writer:
        feed = Feed(writer)
        feed.send("cdrs", cdr("a", 5, cost="5.00"))
        compaction.major(writer, "cdrs")
        feed.send("cdrs", cdr("a", 4, cost="4.00"))  # a worker regression: lower version, later offset
        compaction.major(writer, "cdrs")
        assert cdr_rows(tmp_path) == {"a": (5, "5.00")}


def test_a_call_whose_started_at_changes_month_keeps_one_row(tmp_path):
    with Writer(tmp_path) as writer:
        feed = Feed(writer)
        feed.send("cdrs", cdr("a", 1, None), cdr("b", 1, T0))
        compaction.major(writer, "cdrs")
        feed.send("cdrs", cdr("a", 2, T0), cdr("b", 2, T0 - 30 * DAY_US))
        assert cdr_rows(tmp_path)["a"] == (2, "1.53")  # 'none' partition is always checked
        compaction.major(writer, "cdrs")
        assert cdr_rows(tmp_path) == {"a": (2, "1.53"), "b": (2, "1.53")}


def test_alerts_keep_their_latest_state_events_and_dlq_their_first_copy(tmp_path):
    opened = Alert("controller_outage:p:2026-11-24T10:35:30.123Z", "controller_outage", "p", None, T0,
                   {"state": "open"})
    resolved = replace(opened, detail={"state": "resolved"})
    rejected = encode_dlq(Rejection("not_json", "boom"), "call-events", 2, 40, b"x")
    again = encode_dlq(Rejection("not_json", "boom again"), "call-events", 2, 40, b"x")
    with Writer(tmp_path) as writer:
        feed = Feed(writer)
        feed.send("alerts", alert_to_json(opened), alert_to_json(opened))
        feed.send("dlq", rejected)
        compaction.major(writer, "alerts")
        compaction.major(writer, "dlq")
        feed.send("alerts", alert_to_json(resolved))
        feed.send("dlq", again)
        for step in ("before", "after"):
            alerts = table_arrow(tmp_path, "alerts").to_pylist()
            assert [(a["alert_id"], a["state"]) for a in alerts] == [(opened.alert_id, "resolved")], step
            dlq = table_arrow(tmp_path, "dlq").to_pylist()
            assert [(d["src_offset"], d["error"]) for d in dlq] == [(40, "boom")], step
            compaction.compact_all(writer)


def _write_history(root: Path, repeat: int) -> None:
    with Writer(root) as writer:
        for _ in range(repeat):
            feed = Feed(writer)  # offsets restart: the same messages at the same offsets
            for n in range(4):
                feed.send("cdrs", *(cdr(f"c{k}", 1 + n, T0 - k * DAY_US * 9) for k in range(12)))
                feed.send("alerts", alert_to_json(Alert(f"t:a{n % 2}", "t", "p", None, T0 + n,
                                                        {"n": n})))
            compaction.compact_due(writer, compaction.CompactionPolicy(minor_files=2))


def test_applying_the_same_messages_twice_leaves_the_same_tables(tmp_path):
    _write_history(tmp_path / "once", 1)
    _write_history(tmp_path / "twice", 2)
    assert_same_warehouse(tmp_path / "once", tmp_path / "twice")
    for root in (tmp_path / "once", tmp_path / "twice"):
        with Writer(root) as writer:
            compaction.compact_all(writer)
    assert_same_warehouse(tmp_path / "once", tmp_path / "twice")


def test_only_one_writer_per_warehouse(tmp_path):
    with Writer(tmp_path):
        with pytest.raises(WriterBusy, match="another process"):
            Writer(tmp_path)
    Writer(tmp_path).close()  # released on close


def test_retired_files_outlive_the_grace_period_and_orphans_are_swept(tmp_path):
    with Writer(tmp_path, grace_s=3600) as writer:
        feed = Feed(writer)
        feed.send("cdrs", cdr("a", 1))
        feed.send("cdrs", cdr("a", 2))
        old = {f.path for f in writer.manifest.table_files("cdrs")}
        compaction.major(writer, "cdrs")
        orphan = tmp_path / "data/cdrs/delta/.crashed.parquet.tmp"
        orphan.write_bytes(b"half a file")
        os.utime(orphan, (0, 0))
        assert writer.collect_garbage() == 1  # the orphan; retired files wait
        assert all((tmp_path / p).exists() for p in old) and not orphan.exists()
        writer.grace_s = 0
        assert writer.collect_garbage() == len(old)
        assert not any((tmp_path / p).exists() for p in old)
        assert cdr_rows(tmp_path) == {"a": (2, "1.53")}
        feed.send("cdrs", cdr("b", 1))
    assert not load_manifest(tmp_path).retired


# Reads until the writer is done (argv[3] exists) and at least 11 times; argv[2] exists once it read.
_READER = """
import json, os, sys
from warehouse.reader import Reader, WarehouseError
from warehouse import queries
reader = Reader(sys.argv[1])
counts, errors = [], []
while not os.path.exists(sys.argv[3]) or len(counts) <= 10:
    try:
        counts.append(queries.call_count(reader))
        queries.spend_by_region_day_line(reader)
    except Exception as exc:
        errors.append(repr(exc))
    open(sys.argv[2], "a").close()
print(json.dumps({"counts": counts, "errors": errors}))
"""
WRITES = 20


def test_readers_in_other_processes_query_without_errors_while_the_writer_works(tmp_path):
    root = tmp_path / "warehouse"
    with Writer(root, grace_s=1.0) as writer:
        feed = Feed(writer)
        feed.send("cdrs", cdr("seed", 1))
        ready = [tmp_path / f"reader-{i}.ready" for i in range(2)]
        done = tmp_path / "writer.done"
        readers = [subprocess.Popen([sys.executable, "-c", _READER, str(root), str(flag), str(done)],
                                    stdout=subprocess.PIPE, text=True) for flag in ready]
        deadline = time.monotonic() + 120
        while not all(flag.exists() for flag in ready):  # every write below meets both readers
            assert time.monotonic() < deadline and all(r.poll() is None for r in readers), "readers did not start"
            time.sleep(0.05)
        policy = compaction.CompactionPolicy(minor_files=3, major_rows=40, major_age_s=0.5, major_interval_s=0)
        for n in range(WRITES):
            feed.send("cdrs", *(cdr(f"c{n}-{k}", 1) for k in range(10)))
            compaction.compact_due(writer, policy)
            writer.collect_garbage()
        done.touch()
        results = [json.loads(r.communicate(timeout=120)[0]) for r in readers]
    for result in results:
        assert result["errors"] == []
        assert len(result["counts"]) > 10
        assert result["counts"] == sorted(result["counts"]), "a reader never sees rows disappear"
    assert results[0]["counts"][-1] > 1


def test_a_reader_refuses_a_warehouse_written_by_another_duckdb(tmp_path):
    with Writer(tmp_path) as writer:
        Feed(writer).send("cdrs", cdr("a", 1))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(manifest.read_text().replace(f'"duckdb_version": "{duckdb.__version__}"',
                                                     '"duckdb_version": "0.9.2"'))
    with pytest.raises(WarehouseError, match="written by DuckDB 0.9.2, this process runs"):
        Reader(tmp_path)


def test_readers_follow_a_symlink_swapped_to_a_rebuilt_generation(tmp_path):
    for generation, call in (("gen-1", "old"), ("gen-2", "new")):
        with Writer(tmp_path / generation) as writer:
            Feed(writer).send("cdrs", cdr(call, 1))
    link = tmp_path / "warehouse"
    link.symlink_to(tmp_path / "gen-1")
    with Reader(link) as reader:
        assert queries_call_ids(reader) == ["old"]
        swap = tmp_path / "warehouse.swap"
        swap.symlink_to(tmp_path / "gen-2")
        os.replace(swap, link)  # atomic: readers see one generation or the other
        assert queries_call_ids(reader) == ["new"]


def queries_call_ids(reader: Reader) -> list[str]:
    with reader.cursor() as con:
        return [row[0] for row in con.execute("SELECT call_id FROM cdrs").fetchall()]


def _old_rejects_file(writer: Writer, offset: int) -> DataFile:
    """A ``rejects`` delta as sinks before the contract checks wrote it (no reason, no raw)."""
    rel = new_file_path("rejects", "delta")
    (writer.root / rel).parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT 'cdrs' AS topic, 0::INTEGER AS kafka_partition, {offset}::BIGINT AS kafka_offset, "
                    "TIMESTAMPTZ '2026-11-24 10:00:00+00' AS ts, 'not a JSON object' AS error, "
                    "'garbage' AS raw_excerpt) TO ? (FORMAT parquet)", [str(writer.root / rel)])
    return DataFile(rel, "delta", "", 1, T0, ("all",), T0)


def test_rejects_written_before_the_reason_column_stay_readable(tmp_path):
    """Files of a warehouse written before ``reason``/``raw``/``raw_bytes`` read them as null."""
    with Writer(tmp_path) as writer:
        writer.publish(add=[_old_rejects_file(writer, 7), _old_rejects_file(writer, 8)])
        raw = RawBatch("cdrs")
        raw.add(0, 9, 1_795_430_130_000, b"c-1", b"[1]")
        with closing(writer.cursor()) as con:
            writer.write(Batch(decode_buffers(con, {"cdrs": raw}, {"cdrs": "cdrs"})))
        for step in ("deltas", "minor", "major"):
            rows = sorted(table_arrow(tmp_path, "rejects").to_pylist(), key=lambda r: r["kafka_offset"])
            assert [(r["kafka_offset"], r["reason"], r["raw"], r["error"]) for r in rows] == [
                (7, None, None, "not a JSON object"), (8, None, None, "not a JSON object"),
                (9, "not_object", b"[1]", "not a JSON object")], step
            if step == "deltas":
                assert compaction.minor(writer, "rejects")
            elif step == "minor":
                assert compaction.major(writer, "rejects")
