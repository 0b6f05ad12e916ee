"""The re-rating report (warehouse.rerating) over hand-made calls, in an in-memory DuckDB."""

from __future__ import annotations

import csv
from decimal import Decimal

import pytest

from warehouse import duck
from warehouse.rerating import CSV_COLUMNS, Total, compare_tables, render

pytestmark = pytest.mark.unit

D = Decimal
OLD = [  # call, portal, region, cost, currency
    ("c1", "p1", "Russia mobile", "1.00", "RUB"),
    ("c2", "p1", "Moscow landline", "2.00", "RUB"),
    ("c3", "p2", None, "0.00", None),  # no tariff row before
    ("c4", "p2", "Kazakhstan", "7.20", "RUB"),
    ("c5", "p2", "internal", "0.00", None),
    ("c6", "p3", "Russia mobile", "3.00", "RUB"),  # gone from the rebuild
    ("c8", "p1", "Russia mobile", "0.00", None),  # talked 0 s: no currency before, RUB now
]
NEW = [
    ("c1", "p1", "Russia mobile", "1.50", "RUB"),  # +0.50
    ("c2", "p1", "Moscow landline", "2.00", "RUB"),  # same
    ("c3", "p2", "Russia mobile", "0.30", "RUB"),  # +0.30, rated now
    ("c4", "p2", "Kazakhstan", "7.20", "EUR"),  # same amount, other currency
    ("c5", "p2", "internal", "0.00", None),
    ("c7", "p3", "Russia mobile", "9.99", "RUB"),  # new in the rebuild
    ("c8", "p1", "Russia mobile", "0.00", "RUB"),  # zero either way: not a change
]


@pytest.fixture
def report_and_csv(tmp_path):
    con = duck.connect()
    try:
        for name, rows in (("old_calls", OLD), ("new_calls", NEW)):
            con.execute(f"CREATE TABLE {name} (call_id VARCHAR, portal_id VARCHAR, region VARCHAR, "
                        "cost DECIMAL(18,2), currency VARCHAR)")
            con.executemany(f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?)", rows)
        path = tmp_path / "changed.csv"
        report = compare_tables(con, "old_calls", "new_calls", path)
    finally:
        con.close()
    with open(path, newline="") as handle:
        return report, list(csv.reader(handle))


def test_counts_split_changed_calls_from_calls_on_one_side_only(report_and_csv):
    report, _ = report_and_csv
    assert (report.compared, report.changed, report.only_live, report.only_rebuilt) == (6, 3, 1, 1)


def test_totals_by_currency_region_and_portal_are_hand_computed(report_and_csv):
    report, _ = report_and_csv
    assert report.by_currency == [Total(None, "EUR", 1, D("0.00"), D("7.20"), D("7.20")),
                                  Total(None, "RUB", 3, D("8.20"), D("1.80"), D("-6.40"))]
    assert report.by_region == [
        Total("Kazakhstan", "EUR", 1, D("0.00"), D("7.20"), D("7.20")),
        Total("Kazakhstan", "RUB", 1, D("7.20"), D("0.00"), D("-7.20")),
        Total("Russia mobile", "RUB", 2, D("1.00"), D("1.80"), D("0.80"))]
    assert report.by_portal == [
        Total("p2", "EUR", 1, D("0.00"), D("7.20"), D("7.20")),
        Total("p2", "RUB", 2, D("7.20"), D("0.30"), D("-6.90")),
        Total("p1", "RUB", 1, D("1.00"), D("1.50"), D("0.50"))]


def test_the_csv_lists_each_changed_call_with_old_and_new_cost(report_and_csv):
    _, rows = report_and_csv
    assert rows == [list(CSV_COLUMNS),
                    ["c1", "p1", "Russia mobile", "RUB", "1.00", "1.50", "0.50", "Russia mobile", "RUB"],
                    ["c3", "p2", "Russia mobile", "RUB", "0.00", "0.30", "0.30", "", ""],
                    # A non-zero cost that changed currency: the amounts do not subtract.
                    ["c4", "p2", "Kazakhstan", "EUR", "7.20", "7.20", "", "Kazakhstan", "RUB"]]


def test_the_text_shows_counts_and_signed_differences_and_cuts_long_tables(report_and_csv):
    report, _ = report_and_csv
    text = render(report, ["header line"], limit=1)
    assert text.startswith("header line\ncalls compared: 6; cost changed: 3; only in the rebuild: 1;")
    region = text.split("Difference by region\n")[1].split("\n\n")[0].splitlines()
    assert len(region) == 3 and "Kazakhstan" in region[1] and "+7.20" in region[1]
    assert region[2] == "  ... 2 more in the saved report"
    full = render(report, [])
    assert "-6.90" in full and "+0.50" in full and "more in the saved report" not in full
