"""The live deltas materialized once per manifest (views.py: ``cdrs__delta_rows``,
``cdrs__shadowed_rows``) give every table, rollup and index exactly the rows of the plain views,
which compute them in each query; a delta too damaged to read whole falls back to them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.integration.sink_data import Feed
from tests.integration.test_dashboard_zones import _calls, _json
from warehouse import compaction, rollups, schema, views
from warehouse.reader import Reader
from warehouse.writer import Writer

pytestmark = pytest.mark.integration

TABLES = (*schema.TABLES, *(r.name for r in rollups.ROLLUPS), "cdrs_ids")


def _live_warehouse(root):
    """Compacted calls, then deltas: new versions of stored calls (moved an hour, new cost, a
    recording dropped), a call sent twice, and new calls."""
    calls = _calls()
    ids = list(calls)
    with Writer(root) as writer:
        feed = Feed(writer)
        feed.send("cdrs", *[_json(cid, c) for cid, c in calls.items()])
        compaction.compact_all(writer)
        changed = {cid: dict(calls[cid], start=calls[cid]["start"] + timedelta(hours=1), cost=Decimal("9.99"), rec=0)
                   for cid in ids[::97]}
        feed.send("cdrs", *[_json(cid, c, 2) for cid, c in changed.items()])
        fresh = {f"c-new-{n}": dict(calls[ids[n]], user="u-new") for n in range(40)}
        feed.send("cdrs", *[_json(cid, c) for cid, c in fresh.items()])
        feed.send("cdrs", *[_json(cid, dict(c, cost=Decimal("1.11")), 3) for cid, c in list(changed.items())[:5]])
        assert writer.manifest.table_files("cdrs", "delta")
        assert views.materialized(writer.manifest)


def _rows(reader: Reader, table: str) -> list[tuple]:
    columns = ", ".join(schema.quote(c) for c, _ in rollups.spec_of(table).columns)
    return reader.read(lambda con: con.execute(f"SELECT {columns} FROM {schema.quote(table)} "
                                               "ORDER BY ALL").fetchall())


def test_materialized_deltas_give_the_rows_of_the_plain_views(tmp_path):
    root = tmp_path / "warehouse"
    _live_warehouse(root)
    with Reader(root) as reader:
        tables = reader.read(lambda con: {r[0] for r in con.execute("SHOW TABLES").fetchall()})
        assert {views.DELTA_ROWS, views.SHADOWED_ROWS} <= tables  # the reader materialized them
        shadowed = reader.read(lambda con: con.execute(f"SELECT count(*) FROM {views.SHADOWED_ROWS}").fetchall())
        assert shadowed[0][0] > 0  # new versions of stored calls: base rows shadowed
        materialized = {t: _rows(reader, t) for t in TABLES}
        reader._run_views(views.all_views(reader.root.resolve(), reader.manifest, materialize=False))
        tables = reader.read(lambda con: {r[0] for r in con.execute("SHOW TABLES").fetchall()})
        assert not {views.DELTA_ROWS, views.SHADOWED_ROWS} & tables
        plain = {t: _rows(reader, t) for t in TABLES}
    for table in TABLES:
        assert materialized[table] == plain[table], table
    assert any(materialized[t] for t in TABLES if t.endswith("_hourly"))


def test_many_deltas_are_not_materialized(tmp_path, monkeypatch):
    root = tmp_path / "warehouse"
    _live_warehouse(root)
    monkeypatch.setattr(views, "MATERIALIZE_DELTA_ROWS", 10)
    with Reader(root) as reader:
        assert not views.materialized(reader.manifest)
        tables = reader.read(lambda con: {r[0] for r in con.execute("SHOW TABLES").fetchall()})
        assert not {views.DELTA_ROWS, views.SHADOWED_ROWS} & tables
        assert _rows(reader, "cdrs")


def test_a_delta_damaged_inside_falls_back_to_the_plain_views(tmp_path):
    """Its footer reads, its data does not: the reader still opens (the plain views), and the
    first query that reads it leaves it out (reader.read), as without materialization."""
    root = tmp_path / "warehouse"
    _live_warehouse(root)
    with Reader(root) as reader:
        delta = max(reader.manifest.table_files("cdrs", "delta"), key=lambda f: f.rows)
    path = root / delta.path
    data = bytearray(path.read_bytes())
    middle = len(data) // 3
    data[middle:middle + 64] = b"\xff" * 64  # inside the column chunks, not the footer
    path.write_bytes(bytes(data))
    with Reader(root) as reader:  # opens: the materialization failed, the plain views did not
        tables = reader.read(lambda con: {r[0] for r in con.execute("SHOW TABLES").fetchall()})
        assert not {views.DELTA_ROWS, views.SHADOWED_ROWS} & tables
        rows = _rows(reader, "cdrs")
        assert rows and delta.path in reader.skipped  # the first query left it out
        # Re-installed without it: materialized again, the same rows as the plain views.
        assert _rows(reader, "cdrs_hourly") == _plain_rows(reader, "cdrs_hourly")


def _plain_rows(reader: Reader, table: str) -> list[tuple]:
    usable = reader.manifest.without(frozenset(reader.skipped))
    reader._run_views(views.all_views(reader.root.resolve(), usable, materialize=False))
    return _rows(reader, table)
