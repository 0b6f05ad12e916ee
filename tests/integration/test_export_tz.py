"""``callstream export --tz``, RFC 3339 bounds with offsets and the Excel dialect, checked against
an independent computation: each call's own start converted to the zone's local day by zoneinfo."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.integration.export_samples import export_cdr, run_export
from tests.integration.sink_data import Feed
from warehouse.writer import Writer

pytestmark = pytest.mark.integration

# Starts around month ends and the 2026 DST changes of Berlin (29 Mar, 25 Oct) and New York
# (8 Mar, 1 Nov), each a few minutes either side of the local midnights and changes.
EDGES = ["2026-02-28T22:59:00Z", "2026-02-28T23:01:00Z", "2026-03-01T04:59:00Z", "2026-03-01T05:01:00Z",
         "2026-03-08T06:59:00Z", "2026-03-08T07:01:00Z", "2026-03-28T22:59:00Z", "2026-03-28T23:01:00Z",
         "2026-03-29T21:59:00Z", "2026-03-29T22:01:00Z", "2026-03-31T21:59:00Z", "2026-03-31T22:01:00Z",
         "2026-04-01T03:59:00Z", "2026-04-01T04:01:00Z", "2026-10-24T21:59:00Z", "2026-10-24T22:01:00Z",
         "2026-10-25T22:59:00Z", "2026-10-25T23:01:00Z", "2026-10-31T22:59:00Z", "2026-10-31T23:01:00Z",
         "2026-11-01T03:59:00Z", "2026-11-01T04:01:00Z", "2026-11-01T04:59:00Z", "2026-11-01T05:01:00Z",
         "2026-11-30T20:59:00Z", "2026-11-30T21:01:00Z", "2026-11-30T22:59:00Z", "2026-12-01T04:59:00Z",
         "2026-12-01T05:01:00Z"]
STARTS = {f"c{n:02d}": ts for n, ts in enumerate(EDGES)}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export-tz") / "warehouse"
    with Writer(root) as writer:
        Feed(writer).send("cdrs", *[export_cdr(call_id, ts) for call_id, ts in STARTS.items()])
    return root


def _ids(out: bytes, delimiter: str = ",") -> list[str]:
    rows = list(csv.reader(io.StringIO(out.decode("utf-8-sig"), newline=""), delimiter=delimiter))
    return [r[0] for r in rows[1:]]


def _independent(zone: str, first: str, last_excl: str) -> list[str]:
    """Calls whose start, as a local day of ``zone``, is in [first, last_excl), by start then id."""
    tz = ZoneInfo(zone)
    chosen = [(ts, cid) for cid, ts in STARTS.items()
              if first <= datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(tz).date().isoformat()
              < last_excl]
    return [cid for _, cid in sorted(chosen)]


@pytest.mark.parametrize("zone, first, last", [
    ("Europe/Moscow", "2026-11-01", "2026-12-01"), ("Europe/Berlin", "2026-03-01", "2026-04-01"),
    ("Europe/Berlin", "2026-10-25", "2026-10-26"), ("Europe/Berlin", "2026-03-29", "2026-03-30"),
    ("America/New_York", "2026-03-01", "2026-04-01"), ("America/New_York", "2026-11-01", "2026-11-02"),
    ("America/New_York", "2026-10-01", "2026-11-01"), ("UTC", "2026-03-01", "2026-04-01")])
def test_days_of_a_zone_match_each_calls_own_local_day(warehouse, zone, first, last):
    result = run_export(warehouse, "--from", first, "--to", last, "--tz", zone)
    assert result.returncode == 0, result.stderr
    assert _ids(result.stdout) == _independent(zone, first, last)
    assert b"+03:00" not in result.stdout and b"Z," in result.stdout  # timestamps stay UTC


def test_rfc3339_bounds_with_offsets_are_the_same_instants(warehouse):
    moscow = run_export(warehouse, "--from", "2026-11-01", "--to", "2026-12-01", "--tz", "Europe/Moscow")
    offsets = run_export(warehouse, "--from", "2026-11-01T00:00:00+03:00", "--to", "2026-11-30T21:00:00Z")
    assert offsets.returncode == 0 and offsets.stdout == moscow.stdout
    bad = run_export(warehouse, "--from", "2026-11-01T00:00:00+25:00", "--to", "2026-12-01")
    assert bad.returncode == 2 and bad.stderr.decode().count("\n") == 1
    zone = run_export(warehouse, "--from", "2026-11-01", "--to", "2026-12-01", "--tz", "Mars/Olympus")
    assert zone.returncode == 2 and b"IANA" in zone.stderr


def test_excel_dialect_semicolons_bom_and_a_russian_decimal_comma(warehouse):
    plain = run_export(warehouse, "--from", "2026-11-01", "--to", "2026-12-01")
    excel = run_export(warehouse, "--from", "2026-11-01", "--to", "2026-12-01", "--dialect", "excel", "--locale", "ru")
    assert excel.returncode == 0, excel.stderr
    assert excel.stdout.startswith(b"\xef\xbb\xbfcall_id;portal_id;started_at;")
    rows = list(csv.reader(io.StringIO(excel.stdout.decode("utf-8-sig"), newline=""), delimiter=";"))
    contract = list(csv.reader(io.StringIO(plain.stdout.decode(), newline="")))
    assert [r[0] for r in rows] == [r[0] for r in contract]
    cost = contract[0].index("cost")
    assert rows[1][cost] == contract[1][cost].replace(".", ",") and "," in rows[1][cost]
    assert rows[1][2] == contract[1][2]  # timestamps unchanged (UTC, with a dot before the milliseconds)
    english = run_export(warehouse, "--from", "2026-11-01", "--to", "2026-12-01",
                         "--dialect", "excel", "--locale", "en")
    assert list(csv.reader(io.StringIO(english.stdout.decode("utf-8-sig"), newline=""), delimiter=";")) == contract
