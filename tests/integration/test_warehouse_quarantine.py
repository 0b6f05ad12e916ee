"""A damaged Parquet file (deleted, truncated, overwritten) in a real warehouse.

Readers keep answering from the other files and say which they skipped; the
writer moves the file to ``quarantine/`` with a note and publishes a manifest
without it; compaction of the rest goes on, and a compaction that keeps
failing backs off instead of retrying every half second.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.integration.sink_data import Feed, cdr
from tests.unit.warehouse_samples import T0
from warehouse import compaction, quarantine, queries
from warehouse.compaction import CompactionPolicy, Compactor
from warehouse.layout import MANIFEST, from_json, load_manifest, publish_manifest, to_json
from warehouse.reader import Reader
from warehouse.writer import Writer

pytestmark = pytest.mark.integration

DAY_US = 86_400_000_000


def _calls(prefix: str, n: int, started_us: int = T0) -> list[bytes]:
    return [cdr(f"{prefix}-{i:03d}", 1, started_us + i * 1_000_000) for i in range(n)]


def _warehouse(root: Path) -> Writer:
    """10 calls in the November base, then two deltas of 5 calls each (one is the victim)."""
    writer = Writer(root)
    feed = Feed(writer)
    feed.send("cdrs", *_calls("base", 10))
    compaction.major(writer, "cdrs")
    feed.send("cdrs", *_calls("keep", 5))
    feed.send("cdrs", *_calls("lost", 5))
    return writer


def _victim(writer: Writer) -> str:
    """The delta holding the ``lost-*`` calls (the newest delta)."""
    deltas = sorted(writer.manifest.table_files("cdrs", "delta"), key=lambda f: f.created_us)
    return deltas[-1].path


def _delete(path: Path) -> None:
    path.unlink()


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _scribble(path: Path) -> None:
    """Random bytes over the middle of the file: the size and the footer stay as they were."""
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.seek(size // 4)
        handle.write(os.urandom(size // 3))


def _footer(path: Path) -> None:
    """Garbage in the footer's metadata: DuckDB's error does not even name the file."""
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.seek(size - 300)
        handle.write(os.urandom(100))


def _zeros(path: Path) -> None:
    """16 zero bytes in the middle: DuckDB reads the file without complaint (silent damage)."""
    with open(path, "r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        handle.write(b"\0" * 16)


DAMAGE = {"deleted": _delete, "truncated": _truncate, "scribbled": _scribble, "footer": _footer}


def _call_ids(reader: Reader) -> set[str]:
    frame = queries.call_detail(reader, page_size=10_000)
    return set(frame["call_id"])


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_readers_answer_from_the_other_files_and_name_the_skipped_one(tmp_path, damage):
    writer = _warehouse(tmp_path)
    victim = _victim(writer)
    writer.close()
    DAMAGE[damage](tmp_path / victim)
    with Reader(tmp_path) as reader:
        ids = _call_ids(reader)  # a scribbled file fails only mid-query: the reader retries without it
        assert ids == {f"base-{i:03d}" for i in range(10)} | {f"keep-{i:03d}" for i in range(5)}
        assert queries.call_count(reader) == 15
        assert list(reader.skipped) == [victim]
        info = queries.freshness(reader)
        assert [(p["path"], p["state"], p["table"], p["rows"]) for p in info["incomplete"]] == \
            [(victim, "unreadable", "cdrs", 5)]


def test_a_damaged_base_file_takes_its_rollup_with_it(tmp_path):
    writer = _warehouse(tmp_path)
    base = writer.manifest.table_files("cdrs", "base")[0].path
    writer.close()
    _truncate(tmp_path / base)
    with Reader(tmp_path) as reader:
        assert _call_ids(reader) == {f"keep-{i:03d}" for i in range(5)} | {f"lost-{i:03d}" for i in range(5)}
        # The daily figures agree with the calls that are left: the base's rollup is not used alone.
        with reader.cursor() as con:
            assert con.execute("SELECT sum(calls) FROM cdrs_daily").fetchall() == [(10,)]


def test_the_writer_quarantines_a_damaged_file_with_a_note(tmp_path):
    writer = _warehouse(tmp_path)
    victim = _victim(writer)
    before = writer.manifest.seq
    _truncate(tmp_path / victim)
    found = quarantine.scrub(writer)
    assert [q.path for q in found] == [victim]
    manifest = load_manifest(tmp_path)
    assert manifest.seq > before and victim not in manifest.referenced()
    [entry] = manifest.quarantined
    assert (entry.path, entry.table, entry.kind, entry.rows) == (victim, "cdrs", "delta", 5)
    assert "size" in entry.reason  # a truncated file: its size differs from the manifest's
    moved = tmp_path / entry.moved_to
    assert moved.parent == tmp_path / "quarantine" and moved.is_file() and not (tmp_path / victim).exists()
    note = json.loads(moved.with_suffix(".json").read_text())
    assert note["path"] == victim and note["table"] == "cdrs" and note["rows"] == 5
    assert note["kafka_offsets"] == [[0, 15, 19]]  # partition, first and last offset: still in Kafka
    assert "callstream rebuild" in note["recovery"] and note["reason"] == entry.reason
    assert quarantine.scrub(writer) == []  # nothing else is wrong; nothing quarantined twice
    with Reader(tmp_path) as reader:
        assert reader.skipped == {} and queries.call_count(reader) == 15
        [shown] = queries.freshness(reader)["incomplete"]
        assert (shown["path"], shown["state"], shown["rows"]) == (victim, "quarantined", 5)
    # The rest compacts as usual.
    compaction.major(writer, "cdrs")
    assert not writer.manifest.table_files("cdrs", "delta") and len(writer.manifest.quarantined) == 1
    writer.close()


def test_silent_damage_is_found_by_the_checksum(tmp_path):
    writer = _warehouse(tmp_path)
    victim = _victim(writer)
    _zeros(tmp_path / victim)
    [entry] = quarantine.scrub(writer)
    assert entry.path == victim and "checksum" in entry.reason
    writer.close()


def test_a_missing_file_is_quarantined_too(tmp_path):
    writer = _warehouse(tmp_path)
    victim = _victim(writer)
    _delete(tmp_path / victim)
    [entry] = quarantine.scrub(writer)
    assert entry.moved_to is None and "missing" in entry.reason
    note = json.loads(next((tmp_path / "quarantine").glob("*.json")).read_text())
    assert note["path"] == victim
    writer.close()


def test_a_damaged_rollup_is_quarantined_and_written_again(tmp_path):
    writer = _warehouse(tmp_path)
    rollup = writer.manifest.table_files("cdrs_daily", "base")[0]
    _truncate(tmp_path / rollup.path)
    [entry] = quarantine.scrub(writer)
    assert entry.path == rollup.path and entry.table == "cdrs_daily"
    [again] = writer.manifest.table_files("cdrs_daily", "base")
    assert again.partition == rollup.partition and again.path != rollup.path
    with Reader(tmp_path) as reader, reader.cursor() as con:
        assert con.execute("SELECT sum(calls) FROM cdrs_daily").fetchall() == [(20,)]
    writer.close()


def _strip_checksums(root: Path) -> None:
    """Rewrite the manifest as one written before sizes and checksums were recorded."""
    manifest = load_manifest(root)
    files = {t: tuple(replace(f, size=None, crc32c=None) for f in fs) for t, fs in manifest.files.items()}
    publish_manifest(root, replace(manifest, files=files))


def _run_compactor(writer: Writer, policy: CompactionPolicy, seconds: float) -> None:
    compactor = Compactor(writer, policy)
    compactor.start()
    time.sleep(seconds)
    compactor.stop()


def test_compaction_quarantines_a_bad_input_and_folds_the_rest(tmp_path):
    writer = _warehouse(tmp_path)
    victim = _victim(writer)
    writer.close()
    _strip_checksums(tmp_path)  # only compaction itself can find the damage now
    _scribble(tmp_path / victim)
    writer = Writer(tmp_path)
    policy = CompactionPolicy(minor_files=2, major_age_s=0, major_interval_s=0, interval_s=0.05,
                              scrub_interval_s=3600)
    compactor = Compactor(writer, policy)
    compactor.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (writer.manifest.table_files("cdrs", "delta")
                                           or not writer.manifest.quarantined):
        time.sleep(0.05)
    compactor.stop()
    manifest = writer.manifest
    assert [q.path for q in manifest.quarantined] == [victim]
    assert manifest.quarantined[0].reason.startswith("undecodable data")  # found by decoding the inputs
    assert not manifest.table_files("cdrs", "delta")  # the other delta was folded into the base
    with Reader(tmp_path) as reader:
        assert queries.call_count(reader) == 15 and reader.skipped == {}
    writer.close()


def test_compaction_that_keeps_failing_backs_off(tmp_path, caplog):
    writer = Writer(tmp_path)
    feed = Feed(writer)
    feed.send("cdrs", *_calls("a", 3))
    # A file where the base directory must go: every major fails, whatever the file permissions.
    (tmp_path / "data" / "cdrs" / "base").write_bytes(b"")
    policy = CompactionPolicy(major_age_s=0, major_interval_s=0, interval_s=0.02, backoff_s=0.1,
                              backoff_max_s=10, scrub_interval_s=3600)
    with caplog.at_level(logging.WARNING, logger="warehouse.compaction"):
        _run_compactor(writer, policy, 2.0)
    failures = [r for r in caplog.records if "compaction of cdrs failed" in r.getMessage()]
    # Retried every 20 ms that would be ~100 attempts; doubling from 0.1 s it is about 5.
    assert 2 <= len(failures) <= 6, [r.getMessage() for r in failures]
    assert len(writer.manifest.table_files("cdrs", "delta")) == 1  # nothing lost meanwhile
    writer.close()


def test_the_manifest_of_an_older_version_is_still_read(tmp_path):
    writer = _warehouse(tmp_path)
    writer.close()
    doc = json.loads((tmp_path / MANIFEST).read_bytes())
    doc["format"] = 1
    doc.pop("quarantined")
    for files in doc["files"].values():
        for f in files:
            for key in ("size", "crc32c", "kafka_offsets"):
                f.pop(key)
    (tmp_path / MANIFEST).write_text(json.dumps(doc))
    manifest = load_manifest(tmp_path)
    assert manifest.quarantined == () and from_json(to_json(manifest)) == manifest
    with Reader(tmp_path) as reader:
        assert queries.call_count(reader) == 20


def test_a_reader_in_use_moves_off_a_file_that_disappears(tmp_path, monkeypatch):
    from warehouse import views

    writer = _warehouse(tmp_path)
    victim = _victim(writer)
    writer.close()
    monkeypatch.setattr(views, "MATERIALIZE_DELTA_ROWS", 0)  # the deltas read in each query
    with Reader(tmp_path) as reader:
        assert queries.call_count(reader) == 20
        _delete(tmp_path / victim)  # same manifest: the reader learns it mid-query
        assert len(_call_ids(reader)) == 15 and list(reader.skipped) == [victim]


def test_a_reader_that_materialized_the_deltas_answers_with_the_rows_it_read(tmp_path):
    """The few deltas of a live warehouse are read once per manifest (views.py): a delta deleted
    after that is not read again, and the reader answers with the manifest's rows until the next
    manifest (which, from the writer's quarantine, no longer lists it)."""
    writer = _warehouse(tmp_path)
    victim = _victim(writer)
    writer.close()
    with Reader(tmp_path) as reader:
        assert queries.call_count(reader) == 20
        _delete(tmp_path / victim)
        assert len(_call_ids(reader)) == 20 and not reader.skipped


def test_readers_never_stop_while_files_go_bad_under_a_running_compactor(tmp_path):
    """Queries from another thread keep answering while files are damaged, found and quarantined."""
    writer = _warehouse(tmp_path)
    policy = CompactionPolicy(major_age_s=3600, interval_s=0.05, scrub_interval_s=0.1)
    compactor = Compactor(writer, policy)
    errors: list[BaseException] = []
    stop = threading.Event()

    def query() -> None:
        with Reader(tmp_path) as reader:
            while not stop.is_set():
                try:
                    queries.call_count(reader)
                    _call_ids(reader)
                except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                    errors.append(exc)
                    return

    thread = threading.Thread(target=query)
    compactor.start()
    thread.start()
    try:
        _truncate(tmp_path / _victim(writer))
        deadline = time.monotonic() + 10
        while not writer.manifest.quarantined and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
        compactor.stop()
    assert errors == [] and len(writer.manifest.quarantined) == 1
    writer.close()


# --- what the export and the dashboard make of it ---------------------------------------------

def _export(root: Path, *args: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "callstream.cli", "export", "--warehouse", str(root),
                           "--from", "2026-11-01", "--to", "2026-12-01", *args], capture_output=True, timeout=120)


def test_the_export_refuses_a_billing_csv_with_data_missing(tmp_path):
    root = tmp_path / "warehouse"
    writer = _warehouse(root)
    victim = _victim(writer)
    writer.close()
    _zeros(root / victim)  # silent damage: only the checksum tells
    refused = _export(root, "--out", str(tmp_path / "bill.csv"))
    assert refused.returncode == 1 and refused.stdout == b"" and not (tmp_path / "bill.csv").exists()
    [line] = refused.stderr.decode().splitlines()
    assert line.startswith(f"callstream export: error: the warehouse is missing billing data: {victim} (")
    assert "callstream rebuild" in line and "--allow-incomplete" in line
    allowed = _export(root, "--allow-incomplete")
    assert allowed.returncode == 0
    rows = allowed.stdout.decode().split("\r\n")[1:-1]
    assert len(rows) == 15 and not any(r.startswith("lost-") for r in rows)
    [warning] = allowed.stderr.decode().splitlines()
    assert warning.startswith(f"callstream export: warning: the warehouse is missing billing data: {victim} (")


def test_a_quarantined_file_blocks_the_months_it_holds_only(tmp_path):
    root = tmp_path / "warehouse"
    writer = Writer(root)
    feed = Feed(writer)
    feed.send("cdrs", *_calls("oct", 4, T0 - 40 * DAY_US), *_calls("nov", 6))
    compaction.major(writer, "cdrs")
    october = next(f for f in writer.manifest.table_files("cdrs", "base") if f.partition == "2026-10")
    _truncate(root / october.path)
    assert [q.path for q in quarantine.scrub(writer)] == [october.path]
    writer.close()
    november = _export(root)
    assert november.returncode == 0 and november.stdout.count(b"\r\n") == 7, november.stderr
    october_export = _export(root.parent / "warehouse", "--from", "2026-10-01", "--to", "2026-11-01")
    assert october_export.returncode == 1
    assert f"{october.path} (quarantined" in october_export.stderr.decode()


def test_the_dashboard_says_so_and_its_download_refuses(tmp_path):
    from common.config import Settings
    from dashboards.app import create_app, status_state
    from dashboards.data import Context, Data

    writer = _warehouse(tmp_path)
    victim = _victim(writer)
    _truncate(tmp_path / victim)
    quarantine.scrub(writer)
    writer.close()
    settings = Settings.from_env({"CALLSTREAM_WAREHOUSE": str(tmp_path)})
    with Reader(tmp_path) as reader:
        ctx = Context(settings, Data(reader))
        client = create_app(settings, reader, context=ctx).server.test_client()
        shell = client.get("/_dash-layout").get_data(as_text=True)
        assert "1 warehouse file quarantined" in shell and "5 rows" in shell and "callstream rebuild" in shell
        # The live tick keeps it up to date, next to the freshness badge.
        *_, warning, css = status_state(ctx, None)
        assert warning.startswith("⚠ Incomplete data: 1 warehouse file quarantined (5 rows of cdrs)")
        assert css == "integrity-warning"
        response = client.get("/download/calls.csv?q=" + json.dumps({"start": "2026-11-01", "end": "2026-11-30"}))
        assert response.status_code == 409
        assert victim in response.get_data(as_text=True) and "--allow-incomplete" in response.get_data(as_text=True)
