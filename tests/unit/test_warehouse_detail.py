"""Call-detail pages in two steps (warehouse.detail) against the one-step query, in-memory DuckDB."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from warehouse import duck
from warehouse.detail import _rows_of, page_of_calls
from warehouse.filters import CallFilter, order_by, where

pytestmark = pytest.mark.unit

COLUMNS = "call_id, portal_id, started_at, talk_s, cost, status"
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def con():
    rng = random.Random(8)
    connection = duck.connect()
    connection.execute("CREATE TABLE cdrs (call_id VARCHAR, portal_id VARCHAR, started_at TIMESTAMPTZ, "
                       "talk_s DECIMAL(18,3), cost DECIMAL(18,2), status VARCHAR)")
    rows = []
    for n in range(2000):
        start = None if n % 97 == 0 else T0 + timedelta(seconds=rng.randrange(0, 30 * 86400, 60))
        talk = None if start is None else f"{rng.choice([0, rng.randrange(1, 600)])}.{n % 1000:03d}"
        rows.append((f"c{n:05d}", f"p-{n % 5}", start, talk, f"{rng.randrange(0, 300) / 100:.2f}",
                     rng.choice(["answered", "missed"])))
    connection.executemany("INSERT INTO cdrs VALUES (?, ?, ?, ?, ?, ?)", rows)
    yield connection
    connection.close()


def one_step(con, clause, params, order, offset, limit):
    return con.sql(f"SELECT {COLUMNS} FROM cdrs {clause} {order} LIMIT ? OFFSET ?",
                   params=params + [limit, offset]).to_arrow_table().to_pandas()


@pytest.mark.parametrize("sort", ["talk_s", "cost", "started_at", "status", "portal_id"])
@pytest.mark.parametrize("descending", [True, False])
def test_every_page_equals_the_one_step_query(con, sort, descending):
    order = order_by(sort, descending)
    for flt in (CallFilter(), CallFilter(start=T0 + timedelta(days=10), portals=("p-1", "p-3")),
                CallFilter(statuses=("missed",), min_cost=1)):
        clause, params = where(flt)
        for offset in (0, 50, 1950):
            got = page_of_calls(con, COLUMNS, clause, params, order, offset, 50)
            want = one_step(con, clause, params, order, offset, 50)
            assert got.equals(want), (sort, descending, flt, offset)
            keys = list(zip(want["call_id"], [None if t is None or t != t else t for t in
                                               want["started_at"].astype(object)]))
            if keys:  # the page came from the second step, not from the one-step fallback
                assert _rows_of(con, COLUMNS, clause, params, order, keys).equals(want)


def test_calls_without_a_start_are_fetched_too(con):
    order = order_by("started_at", False)  # NULLS LAST: the last page holds them
    page = page_of_calls(con, COLUMNS, "", [], order, 1975, 50)
    assert len(page) == 25 and page["started_at"].isna().sum() == 21  # calls 0, 97, ..., 1940
    assert page.equals(one_step(con, "", [], order, 1975, 50))


def test_rows_that_moved_since_the_keys_were_read_are_refused(con):
    order = order_by("talk_s", True)
    keys = con.execute(f"SELECT call_id, started_at FROM cdrs {order} LIMIT 5").fetchall()
    assert _rows_of(con, COLUMNS, "", [], order, keys) is not None
    stale = [(keys[0][0], keys[0][1] + timedelta(seconds=1)), *keys[1:]]
    assert _rows_of(con, COLUMNS, "", [], order, stale) is None
    assert _rows_of(con, COLUMNS, "WHERE status = ?", ["nope"], order, keys) is None
