"""The Delta Lake logs the writer keeps over the base files (warehouse/delta_log.py), without Spark:
what each commit holds, put-if-absent commits, checkpoints read back, pruning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warehouse import delta_log, schema
from warehouse.layout import DataFile, Manifest

pytestmark = pytest.mark.unit


def _file(table: str, name: str, kind: str = "base", partition: str = "2026-11", rows: int = 5) -> DataFile:
    path = (f"data/{table}/base/{partition}/{name}.parquet" if kind == "base"
            else f"data/{table}/delta/{name}.parquet")
    return DataFile(path, kind, partition if kind == "base" else "", rows, None, created_us=1_000_000,
                    size=100 + rows)


def _manifest(*files: DataFile) -> Manifest:
    by_table: dict[str, list[DataFile]] = {}
    for data_file in files:
        by_table.setdefault(data_file.path.split("/")[1], []).append(data_file)
    return Manifest(seq=1, files={t: tuple(fs) for t, fs in by_table.items()})


def _commit(root: Path, table: str, version: int) -> list[dict]:
    text = (root / "data" / table / "_delta_log" / f"{version:020d}.json").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_the_log_lists_the_base_files_and_never_a_delta(tmp_path):
    publisher = delta_log.DeltaPublisher(tmp_path)
    done = publisher.sync(_manifest(_file("cdrs", "a"), _file("cdrs", "b", partition="none"),
                                    _file("cdrs", "d1", kind="delta")), now_ms=7)
    assert "cdrs@0" in done and {d.split("@")[0] for d in done} == set(delta_log.PUBLISHED)
    actions = _commit(tmp_path, "cdrs", 0)
    assert [next(iter(a)) for a in actions[:3]] == ["commitInfo", "protocol", "metaData"]
    meta = actions[2]["metaData"]
    fields = json.loads(meta["schemaString"])["fields"]
    assert [f["name"] for f in fields] == list(schema.TABLES["cdrs"].column_names)
    types = {f["name"]: f["type"] for f in fields}
    assert (types["cost"], types["started_at"], types["started_day"], types["version"]) == \
        ("decimal(18,2)", "timestamp", "date", "long")
    assert types["recording_urls"] == {"type": "array", "elementType": "string", "containsNull": True}
    adds = sorted(a["add"]["path"] for a in actions if "add" in a)
    assert adds == ["base/2026-11/a.parquet", "base/none/b.parquet"]
    assert json.loads(actions[-1]["add"]["stats"]) == {"numRecords": 5}
    # an empty table is a Delta table too, with no files
    assert [a for a in _commit(tmp_path, "dlq", 0) if "add" in a] == []


def test_a_change_of_base_files_is_one_commit_of_removes_and_adds_and_no_change_none(tmp_path):
    publisher = delta_log.DeltaPublisher(tmp_path)
    publisher.sync(_manifest(_file("cdrs", "a"), _file("cdrs", "b")), now_ms=1)
    assert publisher.sync(_manifest(_file("cdrs", "a"), _file("cdrs", "b"), _file("cdrs", "d", "delta")),
                          now_ms=2) == []
    assert publisher.sync(_manifest(_file("cdrs", "a"), _file("cdrs", "c")), now_ms=3) == ["cdrs@1"]
    actions = _commit(tmp_path, "cdrs", 1)
    assert [a["remove"]["path"] for a in actions if "remove" in a] == ["base/2026-11/b.parquet"]
    assert [a["add"]["path"] for a in actions if "add" in a] == ["base/2026-11/c.parquet"]
    assert not any("metaData" in a for a in actions)
    assert delta_log.listed_files(tmp_path / "data" / "cdrs") == [
        tmp_path / "data/cdrs/base/2026-11/a.parquet", tmp_path / "data/cdrs/base/2026-11/c.parquet"]


def test_a_commit_never_replaces_an_existing_version(tmp_path):
    publisher = delta_log.DeltaPublisher(tmp_path)
    publisher.sync(_manifest(_file("alerts", "a", partition="all")), now_ms=1)
    taken = tmp_path / "data" / "alerts" / "_delta_log" / f"{1:020d}.json"
    taken.write_text('{"commitInfo":{"by":"someone else"}}\n')
    with pytest.raises(FileExistsError):
        publisher.sync(_manifest(_file("alerts", "b", partition="all")), now_ms=2)
    assert taken.read_text() == '{"commitInfo":{"by":"someone else"}}\n'
    assert [p.name for p in taken.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_checkpoints_hold_the_state_and_old_commits_go(tmp_path):
    publisher = delta_log.DeltaPublisher(tmp_path, checkpoint_interval=4)
    for n in range(10):  # versions 0..9: checkpoints at 4 and 8
        publisher.sync(_manifest(*(_file("events", f"f{k}", partition=f"2026-11-{k + 1:02d}")
                                   for k in range(n, n + 3))), now_ms=n)
    log_dir = tmp_path / "data" / "events" / "_delta_log"
    assert json.loads((log_dir / "_last_checkpoint").read_text()) == {"version": 8, "size": 5}
    # what a reader needs is kept: the checkpoint before the newest one and every commit after it
    assert sorted(p.name for p in log_dir.iterdir()) == sorted(
        [f"{v:020d}.json" for v in range(4, 10)] + [f"{v:020d}.checkpoint.parquet" for v in (4, 8)]
        + ["_last_checkpoint"])
    again = delta_log.read_log(tmp_path / "data" / "events")
    assert again.version == 9
    assert sorted(again.files) == [f"base/2026-11-{d:02d}/f{k}.parquet" for k, d in ((9, 10), (10, 11), (11, 12))]
    assert again.metadata["schemaString"] == delta_log.schema_string(schema.TABLES["events"])
    # a new publisher (a restarted sink) carries on from the checkpoint and the commits after it
    restarted = delta_log.DeltaPublisher(tmp_path, checkpoint_interval=4)
    assert restarted.sync(_manifest(_file("events", "g", partition="2026-11-20")), now_ms=11) == ["events@10"]
    assert [a for a in _commit(tmp_path, "events", 10) if "metaData" in a] == []
