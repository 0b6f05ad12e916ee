"""Warehouse layout: the manifest's JSON form, its atomic publication, file naming, policy."""

from __future__ import annotations

import pytest

from warehouse.compaction import CompactionPolicy, due, tier
from warehouse.layout import (
    DataFile,
    Manifest,
    Retired,
    from_json,
    load_manifest,
    new_file_path,
    publish_manifest,
    table_of,
    to_json,
)

pytestmark = pytest.mark.unit


def _manifest() -> Manifest:
    files = {"cdrs": (DataFile("data/cdrs/base/2026-11/a.parquet", "base", "2026-11", 10, 5,
                               ("2026-11",), 100),
                      DataFile("data/cdrs/delta/b.parquet", "delta", "", 2, None, ("none", "2026-11"), 200))}
    return Manifest(seq=7, published_at_us=123, duckdb_version="2.0.1", files=files,
                    offsets={"cdrs": {0: 12, 3: 4}}, retired=(Retired("data/cdrs/delta/x.parquet", 99),))


def test_sizes_checksums_offsets_and_the_quarantine_survive_the_round_trip():
    from dataclasses import replace

    from warehouse.layout import Quarantined

    base = _manifest()
    files = {"cdrs": tuple(replace(f, size=1234, crc32c=0xDEADBEEF, kafka_offsets=((0, 5, 9), (3, 1, 1)))
                           for f in base.files["cdrs"])}
    entry = Quarantined("data/cdrs/delta/q.parquet", "quarantine/cdrs.q.parquet", "cdrs", "delta", "", 7,
                        "missing", 42, ("2026-11",), ((0, 10, 16),))
    manifest = replace(base, files=files, quarantined=(entry,))
    assert from_json(to_json(manifest)) == manifest
    assert manifest.without({"data/cdrs/delta/b.parquet"}).referenced() == {"data/cdrs/base/2026-11/a.parquet"}


def test_manifest_json_round_trip_keeps_every_field():
    manifest = _manifest()
    assert from_json(to_json(manifest)) == manifest


def test_manifest_of_another_format_is_refused():
    with pytest.raises(ValueError, match="format"):
        from_json(to_json(_manifest()).replace(b'"format": 2', b'"format": 99'))


def test_publish_replaces_the_manifest_and_leaves_no_temporary_file(tmp_path):
    assert load_manifest(tmp_path) is None
    publish_manifest(tmp_path, _manifest())
    publish_manifest(tmp_path, Manifest(seq=8))
    assert load_manifest(tmp_path).seq == 8
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_referenced_lists_every_file_of_every_table():
    assert _manifest().referenced() == {"data/cdrs/base/2026-11/a.parquet", "data/cdrs/delta/b.parquet"}
    assert [f.kind for f in _manifest().table_files("cdrs", "delta")] == ["delta"]
    assert _manifest().table_files("alerts") == ()


def test_new_file_paths_are_unique_and_name_their_table():
    paths = {new_file_path("events", "delta") for _ in range(100)}
    assert len(paths) == 100
    assert all(table_of(p) == "events" for p in paths)
    assert new_file_path("cdrs", "base", "2026-11").startswith("data/cdrs/base/2026-11/")


def _with_deltas(count: int, rows: int, created_us: int) -> Manifest:
    files = tuple(DataFile(f"data/cdrs/delta/{n}.parquet", "delta", "", rows, None, (), created_us)
                  for n in range(count))
    return Manifest(files={"cdrs": files})


@pytest.mark.parametrize("count, rows, age_s, expected", [
    (0, 0, 0, None),
    (1, 10, 1, None),
    (8, 10, 1, "minor"),
    (2, 200_000, 1, "major"),
    (1, 10, 121, "major"),
])
def test_compaction_policy(count, rows, age_s, expected):
    policy = CompactionPolicy(minor_files=8, major_rows=250_000, major_age_s=120)
    now = 1_000_000_000
    manifest = _with_deltas(count, rows, now - int(age_s * 1_000_000))
    assert due(manifest, "cdrs", policy, now) == expected


def test_minor_merges_take_the_newest_files_of_similar_size():
    def files(*rows):
        return [DataFile(f"d{n}", "delta", "", r, None, (), n) for n, r in enumerate(rows)]
    assert [f.path for f in tier(files(1000, 10, 10, 10))] == ["d3", "d2", "d1"]
    assert [f.path for f in tier(files(40, 30, 10, 10))] == ["d3", "d2", "d1", "d0"]
    assert [f.path for f in tier(files(10))] == ["d0"]
    assert tier([]) == []


def test_majors_wait_for_the_interval_since_the_last_one():
    policy = CompactionPolicy(major_rows=100, major_interval_s=30)
    now = 1_000_000_000
    deltas = _with_deltas(2, 100, now).files["cdrs"]
    base = DataFile("b", "base", "2026-11", 10, None, (), now - 10_000_000)
    assert due(Manifest(files={"cdrs": deltas + (base,)}), "cdrs", policy, now) is None
    assert due(Manifest(files={"cdrs": deltas + (base,)}), "cdrs", policy, now + 20_000_000) == "major"
