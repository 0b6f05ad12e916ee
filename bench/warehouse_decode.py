"""The sink's decoder alone: CPU per CDR (contract checks included) and per batch.

    python bench/warehouse_decode.py --cdrs 100000 --runs 3

Decodes ``--cdrs`` plausible CDRs (``warehouse_common.cdr_value``, keyed by
call id, as the sink reads them) in one batch with
``warehouse.decode.decode_json``, and a one-CDR batch (the fixed cost of a
flush: DuckDB prepares the query each time). Figures: the process's CPU time
(DuckDB's threads included) per CDR and per one-CDR batch, best of the runs.
"""

from __future__ import annotations

import argparse
import random
import time

from warehouse_common import cdr_value

from warehouse import duck
from warehouse.decode import RawBatch, decode_json

START_US = 1_795_430_130_000_000


def batch(count: int) -> RawBatch:
    raw = RawBatch("cdrs")
    for n in range(count):
        call_id = f"c-{n:09d}"
        raw.add(0, n, 0, call_id.encode(), cdr_value(random.Random(n), call_id, 1, START_US + n * 1000))
    return raw


def cpu_seconds(con, raw: RawBatch) -> float:
    started = time.process_time()
    rows, rejects = decode_json(con, "cdrs", raw, check_keys=True)
    assert rows.num_rows == len(raw) and rejects.num_rows == 0, rejects.to_pylist()[:1]
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdrs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    big, one = batch(args.cdrs), batch(1)
    con = duck.connect()
    try:
        cpu_seconds(con, one)  # lazy imports and first-use costs out of the way
        per_cdr = min(cpu_seconds(con, big) for _ in range(args.runs)) / args.cdrs
        per_batch = min(cpu_seconds(con, one) for _ in range(max(args.runs, 5)))
    finally:
        con.close()
    print(f"decode: {per_cdr * 1e6:.1f} us CPU per CDR ({args.cdrs} CDRs a batch, best of {args.runs}); "
          f"{per_batch * 1e3:.0f} ms CPU for a one-CDR batch")


if __name__ == "__main__":
    main()
