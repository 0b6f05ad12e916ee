"""Billing CSV: byte-for-byte the contract's format, and one-line errors that leave no half file."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.export_samples import CALLS, expected_csv, export_cdr, run_export
from tests.integration.sink_data import Feed
from warehouse import compaction
from warehouse.export import CSV_COLUMNS, export_to_file
from warehouse.layout import load_manifest, publish_manifest
from warehouse.reader import Reader
from warehouse.writer import Writer

pytestmark = pytest.mark.integration

NOV24 = datetime(2026, 11, 24, tzinfo=UTC)
DEC01 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def warehouse(tmp_path) -> Path:
    root = tmp_path / "warehouse"
    with Writer(root) as writer:
        feed = Feed(writer)
        feed.send("cdrs", *CALLS[:4])
        compaction.major(writer, "cdrs")
        feed.send("cdrs", *CALLS[4:])  # some calls in the base, some still in a delta
    return root


def test_the_csv_is_byte_for_byte_the_contract(warehouse, tmp_path):
    out = tmp_path / "billing.csv"
    with Reader(warehouse) as reader:
        assert export_to_file(reader, out, NOV24, DEC01) == 4
    assert out.read_bytes() == expected_csv(CALLS)
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    # [from, to): f (a millisecond early), d (on --to) and e (no started_at) are out; ties by call_id.
    assert [r[0] for r in rows[1:]] == ["g", "a", "b", "c"]
    assert rows[2][CSV_COLUMNS.index("cost")] == "12.34"  # the latest version of a
    assert rows[4][CSV_COLUMNS.index("region")] == "Москва\nмобильные"


def test_one_portal_and_an_empty_range(warehouse, tmp_path):
    with Reader(warehouse) as reader:
        assert export_to_file(reader, tmp_path / "p2.csv", NOV24, DEC01, "p-2") == 1
        assert export_to_file(reader, tmp_path / "none.csv", DEC01, datetime(2027, 1, 1, tzinfo=UTC),
                              "p-2") == 0
    lines = (tmp_path / "p2.csv").read_bytes().split(b"\r\n")
    assert lines[1].startswith(b'b,p-2,2026-11-24T10:35:30.123Z,,2026-11-24T10:35:39.623Z,outbound,')
    assert b',"Moscow, ""centre""",missed,0.000,61,0.0125,0.00,RUB,checked,0,\r\n' in (tmp_path / "p2.csv").read_bytes()
    assert (tmp_path / "none.csv").read_bytes() == (",".join(CSV_COLUMNS) + "\r\n").encode()


def test_the_cli_writes_the_same_bytes_to_stdout_and_to_a_file(warehouse, tmp_path):
    to_stdout = run_export(warehouse, "--from", "2026-11-24", "--to", "2026-12-01")
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout == expected_csv(CALLS)
    to_file = run_export(warehouse, "--from", "2026-11-24", "--to", "2026-12-01", "--out", str(tmp_path / "x.csv"))
    assert to_file.returncode == 0 and to_file.stdout == b""
    assert to_file.stderr.decode().strip() == f"callstream export: 4 calls -> {tmp_path / 'x.csv'}"
    assert (tmp_path / "x.csv").read_bytes() == to_stdout.stdout
    sub_day = run_export(warehouse, "--from", "2026-11-24T10:35:30.123Z", "--to", "2026-11-24T10:35:30.124Z")
    assert sub_day.stdout.count(b"\r\n") == 3  # header, a, b


@pytest.mark.parametrize("args, code, message", [
    (("--from", "2026-02-30", "--to", "2026-12-01"), 2,
     "callstream export: error: argument --from: not a date (YYYY-MM-DD) or an RFC 3339 time "
     "(2026-11-01T00:00:00+03:00): '2026-02-30'"),
    (("--from", "2026-12-01", "--to", "2026-11-01"), 2,
     "callstream export: error: --from 2026-12-01T00:00:00Z is not before --to 2026-11-01T00:00:00Z: "
     "the range [from, to) is empty"),
    (("--from", "2026-12-01", "--to", "2026-12-01"), 2,
     "callstream export: error: --from 2026-12-01T00:00:00Z is not before --to 2026-12-01T00:00:00Z: "
     "the range [from, to) is empty"),
    (("--from", "2026-11-01", "--to", "2026-12-01", "--out", "/nonexistent-dir/b.csv"), 1,
     "callstream export: error: cannot write /nonexistent-dir/b.csv: No such file or directory"),
])
def test_bad_arguments_give_one_line_and_no_file(warehouse, args, code, message):
    result = run_export(warehouse, *args)
    assert result.returncode == code
    assert result.stderr.decode().strip() == message
    assert result.stdout == b""


def test_unwritable_targets_and_a_missing_warehouse(warehouse, tmp_path):
    result = run_export(warehouse, "--from", "2026-11-01", "--to", "2026-12-01", "--out", str(tmp_path))
    assert result.stderr.decode().strip() == f"callstream export: error: cannot write {tmp_path}: it is a directory"
    missing = run_export(tmp_path / "nothing", "--from", "2026-11-01", "--to", "2026-12-01")
    assert missing.returncode == 1
    assert missing.stderr.decode().strip() == (
        f"callstream export: error: no warehouse at {tmp_path / 'nothing'} "
        "(is `callstream sink` running with this CALLSTREAM_WAREHOUSE?)")


def test_a_failed_export_never_leaves_a_half_file_under_the_target_name(warehouse, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "billing.csv"
    target.write_bytes(b"yesterday's export\r\n")
    # A manifest from before sizes and checksums: the damage shows only mid-query.
    manifest = load_manifest(warehouse)
    publish_manifest(warehouse, replace(manifest, files={
        t: tuple(replace(f, size=None, crc32c=None) for f in fs) for t, fs in manifest.files.items()}))
    for path in (warehouse / "data" / "cdrs").rglob("*.parquet"):
        data = bytearray(path.read_bytes())
        data[4:400] = bytes(396)  # metadata intact, first pages garbage: fails mid-query
        path.write_bytes(bytes(data))
    result = run_export(warehouse, "--from", "2026-11-01", "--to", "2026-12-01", "--out", str(target))
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"callstream export: error: export failed, {target} left unchanged: ")
    assert b"Traceback" not in result.stderr
    assert target.read_bytes() == b"yesterday's export\r\n"
    assert [p.name for p in out_dir.iterdir()] == ["billing.csv"]


def test_an_unreadable_warehouse_is_one_line_too(warehouse):
    for path in (warehouse / "data" / "cdrs").rglob("*.parquet"):
        path.write_bytes(b"PAR1 not parquet")
    result = run_export(warehouse, "--from", "2026-11-01", "--to", "2026-12-01")
    assert result.returncode == 1 and result.stdout == b""
    message = result.stderr.decode().strip()
    # Every cdrs file is left out as damaged, and a bill without them is refused.
    assert message.startswith("callstream export: error: the warehouse is missing billing data: data/cdrs/")
    assert "callstream rebuild" in message and "\n" not in message


@pytest.mark.parametrize("chunk_rows", [1, 2, 3])
def test_cutting_the_range_into_chunks_does_not_change_a_byte(warehouse, tmp_path, chunk_rows):
    out = tmp_path / "chunked.csv"
    with Reader(warehouse) as reader:
        assert export_to_file(reader, out, NOV24, DEC01, chunk_rows=chunk_rows) == 4
    assert out.read_bytes() == expected_csv(CALLS)


def test_a_closed_pipe_stops_the_export_quietly(tmp_path):
    root = tmp_path / "big"
    with Writer(root) as writer:
        Feed(writer).send("cdrs", *(export_cdr(f"call-{n:05d}", f"2026-11-{1 + n % 28:02d}T10:00:00.000Z")
                                    for n in range(30_000)))  # MBs: far more than a pipe holds
    process = subprocess.Popen([sys.executable, "-m", "callstream.cli", "export", "--warehouse", str(root),
                                "--from", "2026-11-01", "--to", "2026-12-01"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout.read(100).startswith(b"call_id,portal_id,")
    process.stdout.close()  # like `| head`
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 141 and stderr == b""
