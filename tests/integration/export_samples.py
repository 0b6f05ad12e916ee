"""The billing export's sample calls, its independently built expected CSV, and the CLI run.

Shared by the export tests (``test_export_csv.py``, ``test_export_file.py``,
``test_export_tz.py``): eight CDR versions around the month's and the range's
edges, one per trap of the CSV format (quotes, commas, newlines, Cyrillic, no
region, no start).
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from streams.domain.cdr_json import cdr_to_json
from streams.domain.timefmt import parse_ts_us
from tests.unit.warehouse_samples import CDR
from warehouse.export import CSV_COLUMNS


def export_cdr(call_id: str, started: str | None, version: int = 1, **changes) -> bytes:
    start = parse_ts_us(started) if started else None
    times = {"answered_at_us": start and start + 2_000_000, "ended_at_us": start and start + 9_500_000}
    return cdr_to_json(CDR._replace(call_id=call_id, started_at_us=start, **{**times, **changes}), version)


CALLS = [
    export_cdr("a", "2026-11-24T10:35:30.123Z", 1, cost=Decimal("9.99")),
    export_cdr("b", "2026-11-24T10:35:30.123Z", portal_id="p-2", region='Moscow, "centre"',
         rate_per_min=Decimal("0.0125"), cost=Decimal("0.00"), talk_s=Decimal("0.000"), status="missed",
         recording_urls=(), recording_bytes=0, shown_number=None, answered_at_us=None),
    export_cdr("c", "2026-11-30T23:59:59.999Z", region="Москва\nмобильные", user_id=None),
    export_cdr("d", "2026-12-01T00:00:00.000Z"),
    export_cdr("e", None, status="incomplete"),
    export_cdr("f", "2026-11-23T23:59:59.999Z"),
    export_cdr("g", "2026-11-24T00:00:00.000Z", region=None, rate_per_min=None, currency=None,
         billed_s=0, cost=Decimal("0.00"), controller="bypassed"),
    export_cdr("a", "2026-11-24T10:35:30.123Z", 2, cost=Decimal("12.34")),  # the latest version wins
]


def expected_csv(values: list[bytes]) -> bytes:
    """The contract's CSV built independently: the CDR's own JSON text, Python's csv module."""
    latest: dict[str, dict] = {}
    for value in values:
        doc = json.loads(value, parse_float=str, parse_int=str)
        latest[doc["call_id"]] = doc
    rows = [d for d in latest.values() if d["started_at"] and "2026-11-24" <= d["started_at"] < "2026-12-01"]
    rows.sort(key=lambda d: (d["started_at"], d["call_id"]))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for doc in rows:
        doc["recording_url"] = doc["recording_urls"][0] if doc["recording_urls"] else None
        writer.writerow(["" if doc[c] is None else doc[c] for c in CSV_COLUMNS])
    return out.getvalue().encode()


def run_export(warehouse: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "callstream.cli", "export", "--warehouse", str(warehouse),
                           *args], capture_output=True, timeout=120)
