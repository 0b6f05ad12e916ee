"""Generate N realistic CDRs over a year for P portals straight into a warehouse.

Vectorised in DuckDB (no Python row loop): deterministic pseudo-random columns
from ``hash(i, k)``, rates from the packaged tariff table, written as the base
layout the compactor produces (one sorted Parquet file per month) and
published through the warehouse's own write path.

    python bench/warehouse_generate.py --rows 10000000 --out var/bench-warehouse
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from warehouse import duck
from warehouse.writer import Writer

# Row i's pseudo-random uniform number k in [0, 1).
_MACROS = """
CREATE OR REPLACE MACRO u(i, k) AS ((hash(i, k, getvariable('seed')) % 1000003) / 1000003.0);
"""

# Operator tariff rows in force at the end of the year, Russian prefixes first
# (most traffic), then the CIS and the rest of the world.
_REGIONS = """
CREATE OR REPLACE TABLE regions AS
SELECT row_number() OVER (ORDER BY (prefix NOT LIKE '7%'), prefix) - 1 AS idx,
       region, CAST(rate_per_min AS VARCHAR) AS rate_text, increment_s, min_s, connect_fee, currency
FROM (
  SELECT *, row_number() OVER (PARTITION BY prefix ORDER BY valid_from DESC) AS rn
  FROM read_csv(?, all_varchar = true)
  WHERE line = 'operator' AND direction = 'outbound' AND prefix <> ''
) WHERE rn = 1
"""

_DRAWS = """
CREATE OR REPLACE TABLE draws AS
WITH d AS (
  SELECT i,
    CAST(floor(getvariable('portals') * pow(u(i, 1), 2)) AS INTEGER) AS p,
    -- More calls in recent months (a growing customer base), office hours.
    -- (milliseconds, like the CDR's timestamps)
    getvariable('end_us') - CAST(1 + floor(365 * CASE WHEN u(i, 16) < 0.6 THEN u(i, 2)
                                                      ELSE 1 - sqrt(u(i, 2)) END) AS BIGINT) * 86400000000
      + CAST((7 * 3600 + 12 * 3600 * (u(i, 3) + u(i, 4)) / 2) * 1000 AS BIGINT) * 1000 AS start_us,
    u(i, 5) AS u_dir, u(i, 6) AS u_line, u(i, 7) AS u_status, u(i, 8) AS u_ctl,
    exp(3.6 + 1.1 * (u(i, 9) + u(i, 10) + u(i, 11) - 1.5) * 2) AS talk_f,
    2 + 25 * u(i, 12) AS ring_f, u(i, 13) AS u_user, u(i, 14) AS u_region, u(i, 15) AS u_ver
  FROM range(getvariable('rows')) t(i)
)
SELECT *,
  CASE WHEN u_dir < 0.45 THEN 'inbound' WHEN u_dir < 0.9 THEN 'outbound' ELSE 'internal' END AS direction,
  CASE WHEN u_status < 0.68 THEN 'answered' WHEN u_status < 0.82 THEN 'missed'
       WHEN u_status < 0.88 THEN 'busy' WHEN u_status < 0.91 THEN 'rejected'
       WHEN u_status < 0.97 THEN 'failed' ELSE 'incomplete' END AS status
FROM d
"""

_CDRS = """
CREATE OR REPLACE TABLE gen AS
WITH x AS (
  SELECT d.*,
    CASE WHEN direction = 'internal' THEN 'internal'
         WHEN direction = 'inbound' THEN (CASE WHEN u_line < 0.75 THEN 'rented' ELSE 'sip' END)
         ELSE (CASE WHEN u_line < 0.5 THEN 'operator' WHEN u_line < 0.8 THEN 'rented' ELSE 'sip' END)
    END AS line,
    printf('p-%02d', p) AS portal_id,
    printf('u-%02d-%03d', p, CAST(floor(u_user * (10 + hash(p) % 290)) AS INTEGER)) AS user_id,
    CAST(round(talk_f, 3) AS DECIMAL(18,3)) AS talk,
    CAST(round(ring_f, 3) AS DECIMAL(18,3)) AS ring,
    CAST(floor(getvariable('n_regions') * pow(u_region, 3)) AS INTEGER) AS region_idx
  FROM draws d
), y AS (
  SELECT x.*, r.region AS op_region, r.rate_text, r.increment_s::INTEGER AS inc, r.min_s::INTEGER AS min_s,
    CASE WHEN status = 'answered' THEN talk ELSE 0::DECIMAL(18,3) END AS talk_s,
    status = 'incomplete' AND u_ver < 0.3 AS no_start
  FROM x JOIN regions r ON r.idx = x.region_idx
), z AS (
  SELECT y.*,
    CASE WHEN line = 'internal' THEN 'internal'
         WHEN line = 'sip' THEN 'SIP trunk (own carrier)'
         WHEN direction = 'inbound' THEN 'Russia rented number incoming'
         ELSE op_region END AS region,
    CASE WHEN line = 'internal' THEN NULL
         WHEN line = 'sip' OR direction = 'inbound' THEN '0.00' ELSE rate_text END AS rate_txt,
    CAST(ceil(talk_s) AS BIGINT) AS t
  FROM y
), b AS (
  SELECT z.*,
    CASE WHEN line = 'internal' OR t = 0 THEN 0
         WHEN line IN ('operator', 'rented') AND direction = 'outbound'
           THEN greatest(min_s, CAST(ceil(t / inc) * inc AS BIGINT))
         ELSE t END AS billed
  FROM z
)
SELECT
  printf('c-%012x', hash(i, 'call')) AS call_id, portal_id,
  1 + CAST(u_ver < 0.25 AS INTEGER) AS version, direction, line,
  CASE WHEN direction = 'inbound' THEN printf('+79%09d', hash(i, 'f') % 1000000000)
       ELSE 'user:' || user_id END AS "from",
  CASE WHEN direction = 'outbound' THEN printf('+79%09d', hash(i, 't') % 1000000000)
       WHEN direction = 'internal' THEN 'user:' || printf('u-%02d-%03d', p, hash(i, 'tu') % 50)
       ELSE printf('+7495%07d', p * 1000 + hash(p) % 1000) END AS "to",
  CASE WHEN line = 'rented' THEN printf('+7495%07d', p * 1000 + hash(p) % 1000)
       WHEN line = 'sip' THEN printf('sip-%02d', p) END AS line_number,
  CASE WHEN direction = 'outbound' AND u_line < 0.1 THEN printf('+7495%07d', p * 1000 + 1) END AS shown_number,
  false AS extranet, user_id,
  CASE WHEN NOT no_start THEN make_timestamptz(start_us) END AS started_at,
  CASE WHEN status = 'answered' THEN make_timestamptz(start_us + CAST(ring * 1000000 AS BIGINT)) END AS answered_at,
  CASE WHEN status <> 'incomplete'
       THEN make_timestamptz(start_us + CAST((ring + talk_s) * 1000000 AS BIGINT)) END AS ended_at,
  CASE WHEN NOT no_start AND status <> 'incomplete' THEN ring END AS ring_s,
  CASE WHEN status <> 'incomplete' THEN talk_s END AS talk_s,
  CASE WHEN NOT no_start AND status <> 'incomplete' THEN ring + talk_s END AS duration_s,
  status,
  CASE status WHEN 'answered' THEN 'normal' WHEN 'missed' THEN 'no_answer' WHEN 'busy' THEN 'busy'
              WHEN 'rejected' THEN 'rejected' WHEN 'failed' THEN 'failed' END AS hangup_cause,
  CASE WHEN direction = 'inbound' THEN 1 + CAST(u_user * 3 AS INTEGER) ELSE 0 END AS queue_attempts,
  NULL::VARCHAR AS forwarded_to,
  CASE WHEN u_ctl < 0.02 THEN 'bypassed' WHEN u_ctl < 0.03 THEN 'none' ELSE 'checked' END AS controller,
  CASE WHEN u_ctl >= 0.03 THEN (CASE WHEN u_ctl < 0.035 THEN 'license_error' ELSE 'ok' END) END AS controller_result,
  region, CAST(rate_txt AS DECIMAL(18,6)) AS rate_per_min, rate_txt AS rate_per_min_text,
  billed AS billed_s,
  coalesce(CAST(round(CAST(rate_txt AS DECIMAL(18,6)) * billed / 60, 2) AS DECIMAL(18,2)), 0.00) AS cost,
  NULL::VARCHAR AS cost_text,
  CASE WHEN line <> 'internal' THEN 'RUB' END AS currency,
  CASE WHEN status = 'answered' AND line <> 'internal' AND p % 3 <> 0
       THEN [printf('https://rec.example.com/p-%02d/%012x.mp3', p, hash(i, 'call'))] ELSE []::VARCHAR[] END
    AS recording_urls,
  CASE WHEN status = 'answered' AND line <> 'internal' AND p % 3 <> 0
       THEN CAST(talk_s * 16000 AS BIGINT) ELSE 0 END AS recording_bytes,
  CASE WHEN status = 'answered' AND line <> 'internal' AND p % 3 <> 0
       THEN talk_s ELSE 0::DECIMAL(18,3) END AS recording_s,
  4 + CAST(u_user * 8 AS INTEGER) AS events,
  CASE WHEN NOT no_start THEN CAST(make_timestamp(start_us) AS DATE) END AS started_day,
  CAST(hash(i, 'call') % 8 AS INTEGER) AS kafka_partition, i AS kafka_offset
FROM b
"""


def generate(root: Path, rows: int, portals: int, end: datetime, seed: int = 1) -> int:
    """Write ``rows`` CDRs ending at ``end`` into a fresh warehouse at ``root``; returns rows."""
    from common.config import Settings

    con = duck.connect(memory_limit="6GB", temp_directory=str(root / ".spill"))
    end_us = int(end.timestamp()) * 1_000_000
    for name, value in (("seed", seed), ("portals", portals), ("rows", rows), ("end_us", end_us)):
        con.execute(f"SET VARIABLE {name} = ?", [value])
    con.execute(_MACROS)
    con.execute(_REGIONS, [str(Settings.from_env().tariffs_path)])
    con.execute("SET VARIABLE n_regions = (SELECT count(*) FROM regions)")
    con.execute(_DRAWS)
    con.execute(_CDRS)
    con.execute("UPDATE gen SET cost_text = CAST(cost AS VARCHAR)")
    con.execute("DROP TABLE draws")
    with Writer(root) as writer:
        writer.load_base("cdrs", con, "gen")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--portals", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("var/bench-warehouse"))
    parser.add_argument("--end", default=None, help="UTC date after the last day (default: tomorrow)")
    args = parser.parse_args()
    end = (datetime.fromisoformat(args.end).replace(tzinfo=UTC) if args.end
           else datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
           + timedelta(days=1))
    if (args.out / "manifest.json").exists():
        raise SystemExit(f"{args.out} already holds a warehouse; remove it first")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    generate(args.out, args.rows, args.portals, end)
    print(f"generated {args.rows} CDRs for {args.portals} portals into {args.out} "
          f"in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
