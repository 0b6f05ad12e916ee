"""The SQL rating (warehouse/rerate_sql.py) against the domain core's ``rate_call``, CDR by CDR.

Random CDR fields over the packaged tariff table and over a table of rating
traps: a longer prefix not yet valid when the call started (the shorter one
rates it), ``valid_from`` exactly at the start, increments and minimums,
connect fees, rates with many decimals whose cost falls on a half cent, an
empty prefix, user refs, numbers with separators and non-ASCII digits, calls
that did not talk, incomplete calls (no ``talk_s``), internal calls and calls
without call.started.
"""

from __future__ import annotations

import random
from decimal import Decimal

import pyarrow as pa
import pytest

from common.config import Settings
from streams.domain.rating import load_tariffs, parse_tariffs, rate_call
from warehouse import duck
from warehouse.rerate_sql import load_tariff_table, rating_query

pytestmark = pytest.mark.unit

TRAPS = """line,direction,prefix,region,rate_per_min,connect_fee,increment_s,min_s,currency,valid_from
operator,outbound,7,Russia,1.20,0.00,1,0,RUB,2020-01-01T00:00:00Z
operator,outbound,79,Mobile,2.2,0.00,1,0,RUB,2026-07-01T00:00:00Z
operator,outbound,79,Mobile,2.25,0.005,6,30,RUB,2026-07-01T12:00:00.000001Z
operator,outbound,791,Mobile premium,0.123456789,0.49,60,60,RUB,2026-06-30T23:59:59.999999Z
operator,outbound,7912,Never yet,9.99,1.00,1,0,RUB,2099-01-01T00:00:00Z
operator,outbound,,Anywhere,3.333333,0.015,7,0,USD,2020-01-01T00:00:00Z
operator,inbound,7495,Moscow in,0.10,0.00,1,0,RUB,2020-01-01T00:00:00Z
operator,inbound,,Any in,0.05,0.50,60,60,EUR,2020-01-01T00:00:00Z
rented,outbound,7,Mobile line,1.005,0.00,1,1,RUB,2020-01-01T00:00:00Z
rented,outbound,7,Mobile line,1.015,0.00,1,1,RUB,2026-07-01T00:00:00Z
sip,outbound,44,UK,0.30,0.00,30,0,GBP,2020-01-01T00:00:00Z
"""
LINES = ("operator", "rented", "sip", "internal", "extranet")
DIRECTIONS = ("outbound", "inbound", "internal")
NUMBERS = ("+79123456789", "+7912", "+791", "+79", "+7", "+74951234567", "+447700900000", "+12025550100",
           "8 (912) 345-67-89", "+٧٩١٢٣", "user:42", "user:", "", "ext 12", "+4915112345678",
           "+76 123", "+77001234567", "+3751234567", "+0")
STARTS = (1_782_863_999_999_999, 1_782_864_000_000_000, 1_782_907_200_000_000, 1_782_907_200_000_001,
          1_782_907_200_000_002, 1_577_836_800_000_000, 1_577_836_799_999_999, 1_795_503_600_000_000)
TALKS = (None, "0.000", "0.001", "0.999", "1.000", "1.001", "29.999", "30.000", "59.001", "60.000",
         "61.500", "3599.999", "7200.000", "12345.678")


def _cdrs(rng: random.Random, count: int) -> list[dict]:
    rows = []
    for n in range(count):
        started = rng.choice(STARTS) + rng.choice((0, 0, rng.randrange(-10**12, 10**12)))
        rows.append({"call_id": f"c{n}", "line": rng.choice(LINES[:3] * 2 + LINES),
                     "direction": rng.choice(DIRECTIONS[:2] * 2 + DIRECTIONS),
                     "to": rng.choice(NUMBERS + (None,)), "line_number": rng.choice(NUMBERS + (None,)),
                     "started_at_us": None if rng.random() < 0.03 else started,
                     "talk_s": rng.choice(TALKS)})
    return rows


def _sql_ratings(tariffs, cdrs: list[dict]) -> dict[str, tuple]:
    con = duck.connect()
    try:
        scale = load_tariff_table(con, tariffs)
        con.register("raw", pa.table({
            "call_id": [c["call_id"] for c in cdrs], "line": [c["line"] for c in cdrs],
            "direction": [c["direction"] for c in cdrs], "to": [c["to"] for c in cdrs],
            "line_number": [c["line_number"] for c in cdrs],
            "started_at_us": pa.array([c["started_at_us"] for c in cdrs], pa.int64()),
            "talk_s": [c["talk_s"] for c in cdrs]}))
        con.execute("CREATE TEMP TABLE cdrs AS SELECT call_id, line, direction, \"to\", line_number, "
                    "make_timestamptz(started_at_us) AS started_at, "
                    "CAST(talk_s AS DECIMAL(18,3)) AS talk_s FROM raw")
        rows = con.execute(f"SELECT call_id, region, rate_per_min_text, rate_per_min, billed_s, cost, "
                           f"cost_text, currency FROM ({rating_query('cdrs', scale, tariffs)})"
                           ).fetchall()
    finally:
        con.close()
    return {row[0]: row[1:] for row in rows}


def _core_rating(tariffs, cdr: dict) -> tuple:
    if cdr["started_at_us"] is None:  # no call.started: the CDR is not rated (cdr._rating)
        return (None, None, None, 0, Decimal("0.00"), "0.00", None)
    talk = None if cdr["talk_s"] is None else Decimal(cdr["talk_s"])
    r = rate_call(tariffs, line=cdr["line"], direction=cdr["direction"], to=cdr["to"] or "",
                  line_number=cdr["line_number"], started_at_us=cdr["started_at_us"], talk_s=talk)
    rate_text = None if r.rate_per_min is None else format(r.rate_per_min, "f")
    rate = None if rate_text is None else Decimal(rate_text).quantize(Decimal("0.000001"))
    return (r.region, rate_text, rate, r.billed_s, r.cost, format(r.cost, "f"), r.currency)


@pytest.mark.parametrize("table", ["packaged", "traps"])
def test_the_sql_rating_is_the_cores_on_every_cdr(table):
    tariffs = (load_tariffs(Settings.from_env({}).tariffs_path) if table == "packaged"
               else parse_tariffs(TRAPS, "traps"))
    cdrs = _cdrs(random.Random(16 + len(table)), 10_000)
    sql = _sql_ratings(tariffs, cdrs)
    mismatches = [(c, sql[c["call_id"]], _core_rating(tariffs, c)) for c in cdrs
                  if sql[c["call_id"]] != _core_rating(tariffs, c)]
    assert mismatches[:5] == []
    rated = [c for c in cdrs if _core_rating(tariffs, c)[4] > 0]
    assert len(rated) > 300  # the sample exercised costs, not only zeros


def test_half_cents_round_up_and_fees_add_before_rounding():
    tariffs = parse_tariffs(TRAPS, "traps")
    # 0.123456789 * 60 / 60 + 0.49 = 0.613456789 -> 0.61; rented 1.005 * 1 s / 60 -> 0.02 (0.01675)
    cdrs = [{"call_id": "a", "line": "operator", "direction": "outbound", "to": "+7915", "line_number": None,
             "started_at_us": 1_782_907_200_000_000, "talk_s": "59.001"},
            {"call_id": "b", "line": "rented", "direction": "outbound", "to": "+7000", "line_number": None,
             "started_at_us": 1_782_863_999_999_999, "talk_s": "0.001"},
            {"call_id": "c", "line": "operator", "direction": "outbound", "to": "+1", "line_number": None,
             "started_at_us": 1_782_863_999_999_999, "talk_s": "90.000"}]
    sql = _sql_ratings(tariffs, cdrs)
    assert [sql[c][4] for c in "abc"] == [Decimal("0.61"), Decimal("0.02"), Decimal("5.07")]
    assert [sql[c] for c in "abc"] == [_core_rating(tariffs, c) for c in cdrs]
