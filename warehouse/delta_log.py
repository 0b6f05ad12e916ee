"""Delta Lake transaction logs over the compacted base files: what external engines read.

The warehouse's own readers know the winner rule between base and delta files
(views.py); Spark, Trino or DuckDB on another machine should not have to. So
the writer publishes, for each table, a Delta Lake table at
``<warehouse>/data/<table>/`` whose log (``_delta_log/``) lists exactly the
table's **base** files of the current manifest: deduplicated winners, exact as
of the last major compaction (the deltas since are never listed). Engines that
read Delta read it as any Delta table; nothing here is specific to us.

Why Delta's log and not Iceberg's metadata: the log is plain JSON commits plus
Parquet checkpoints, committed by creating the next numbered file — the same
"immutable files + one atomic step" the manifest is made of — readable by
Spark (delta-spark), Trino (its Delta Lake connector), DuckDB (the ``delta``
extension), delta-rs/polars, with no catalog service; Iceberg needs Avro
manifest files and a catalog (or a version-hint file that is not safe on
object stores) for the same atomic commit.

**Commits.** After every manifest publication the writer compares each
table's base files with the files its log lists and, when they differ,
writes the next commit: ``add`` for new base files, ``remove`` for retired
ones (protocol and metadata in commit 0). A commit file is written under a
temporary name, fsynced and hard-linked to ``<version>.json`` — a link never
replaces an existing file (put-if-absent), so a commit is atomic and never
overwrites another; the writer's lock makes it the only committer. A crash
between the manifest and the commit is repaired when the next writer opens
the warehouse (it compares again). Removed files are deleted by the writer's
garbage collection 60 s after their retirement, as for its own readers.

**Checkpoints.** At every ``CHECKPOINT_INTERVAL``-th version the table's state (protocol,
metadata, one ``add`` per file) is written as ``<version>.checkpoint.parquet``
and ``_last_checkpoint`` names it, so a reader never replays more than that
many commits; commits and checkpoints older than the checkpoint before are
deleted (time travel further back would find the data files gone anyway).
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

from warehouse import schema
from warehouse.layout import DATA, DataFile, Manifest, fsync_dir

log = logging.getLogger(__name__)

LOG_DIR = "_delta_log"
CHECKPOINT_INTERVAL = 10
PUBLISHED = ("cdrs", "alerts", "events", "dlq", "rejects")
PROTOCOL = {"minReaderVersion": 1, "minWriterVersion": 2}
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.parquet$")
_DECIMAL = re.compile(r"^DECIMAL\((\d+),(\d+)\)$")
_SIMPLE_TYPES = {"VARCHAR": "string", "BIGINT": "long", "INTEGER": "integer", "BOOLEAN": "boolean",
                 "TIMESTAMPTZ": "timestamp", "DATE": "date", "BLOB": "binary"}


def spark_type(sql_type: str):
    """The Delta (Spark JSON) type of one of the warehouse's DuckDB column types."""
    if sql_type in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[sql_type]
    if sql_type.endswith("[]"):
        return {"type": "array", "elementType": spark_type(sql_type[:-2]), "containsNull": True}
    decimal = _DECIMAL.match(sql_type)
    if decimal:
        return f"decimal({decimal.group(1)},{decimal.group(2)})"
    raise ValueError(f"no Delta type for {sql_type}")


def schema_string(spec: schema.TableSpec) -> str:
    """The table's schema as Delta's ``metaData.schemaString`` (every column nullable)."""
    fields = [{"name": name, "type": spark_type(sql_type), "nullable": True, "metadata": {}}
              for name, sql_type in spec.columns]
    return json.dumps({"type": "struct", "fields": fields}, separators=(",", ":"))


def table_dir(root: Path, table: str) -> Path:
    """Where the Delta table of ``table`` lives (its log in ``_delta_log/``)."""
    return root / DATA / table


@dataclass
class TableLog:
    """What one table's log lists, as last committed (or read back from disk)."""

    version: int = -1
    metadata: dict | None = None
    files: dict[str, dict] = field(default_factory=dict)  # path in the log -> its add action


def _add(table_path: str, data_file: DataFile) -> dict:
    return {"path": table_path, "partitionValues": {}, "size": int(data_file.size or 0),
            "modificationTime": data_file.created_us // 1000, "dataChange": True,
            "stats": json.dumps({"numRecords": data_file.rows})}


def _log_path(table: str, data_file: DataFile) -> str:
    """A base file's path relative to the table's directory, URI-encoded as Delta wants it."""
    prefix = f"{DATA}/{table}/"
    assert data_file.path.startswith(prefix), data_file.path
    return quote(data_file.path[len(prefix):], safe="/")


class DeltaPublisher:
    """Keeps each published table's Delta log equal to the manifest's base files."""

    def __init__(self, root: Path, *, checkpoint_interval: int = CHECKPOINT_INTERVAL) -> None:
        self.root = root
        self.checkpoint_interval = checkpoint_interval
        self._logs: dict[str, TableLog] = {}

    def sync(self, manifest: Manifest, now_ms: int) -> list[str]:
        """Commit, per table whose base files changed, the difference; returns "table@version"s."""
        done = []
        for table in PUBLISHED:
            version = self._sync_table(table, manifest.table_files(table, "base"), now_ms)
            if version is not None:
                done.append(f"{table}@{version}")
        return done

    def _sync_table(self, table: str, base: tuple[DataFile, ...], now_ms: int) -> int | None:
        state = self._logs.get(table)
        if state is None:
            state = self._logs[table] = read_log(table_dir(self.root, table))
        spec = schema.TABLES[table]
        wanted = {_log_path(table, f): f for f in base}
        actions: list[dict] = []
        if state.metadata is None or state.metadata.get("schemaString") != schema_string(spec):
            if state.version < 0:
                actions.append({"protocol": PROTOCOL})
            state.metadata = {"id": (state.metadata or {}).get("id") or str(uuid.uuid4()),
                              "name": table, "format": {"provider": "parquet", "options": {}},
                              "schemaString": schema_string(spec), "partitionColumns": [],
                              "configuration": {}, "createdTime": now_ms}
            actions.append({"metaData": state.metadata})
        removed = sorted(set(state.files) - set(wanted))
        added = sorted(set(wanted) - set(state.files))
        if not (actions or removed or added):
            return None
        actions += [{"remove": {"path": p, "deletionTimestamp": now_ms, "dataChange": True,
                                "extendedFileMetadata": True, "partitionValues": {},
                                "size": state.files[p]["size"]}} for p in removed]
        adds = {p: _add(p, wanted[p]) for p in added}
        actions += [{"add": action} for action in adds.values()]
        actions.insert(0, {"commitInfo": {"timestamp": now_ms, "operation": "callstream publish",
                                          "operationParameters": {}, "engineInfo": "callstream",
                                          "isBlindAppend": not removed}})
        version = state.version + 1
        _commit(table_dir(self.root, table) / LOG_DIR, version, actions)
        state.version = version
        for path in removed:
            del state.files[path]
        state.files.update(adds)
        if version % self.checkpoint_interval == 0 and version:  # where Delta's own writers put them
            write_checkpoint(table_dir(self.root, table) / LOG_DIR, state)
        return version


def _commit(log_dir: Path, version: int, actions: list[dict]) -> None:
    """Write commit ``version`` atomically and only if absent (temp, fsync, link, fsync dir)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    final = log_dir / f"{version:020d}.json"
    tmp = log_dir / f".{final.name}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(a, separators=(",", ":")) + "\n" for a in actions))
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, final)  # FileExistsError: the version is taken, nothing overwritten
    finally:
        tmp.unlink()
    fsync_dir(log_dir)


def write_checkpoint(log_dir: Path, state: TableLog) -> None:
    """The table's state at ``state.version`` as a Parquet checkpoint, then ``_last_checkpoint``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from warehouse import delta_checkpoint

    rows = [{"protocol": PROTOCOL}, {"metaData": state.metadata}] + \
        [{"add": action} for action in state.files.values()]
    final = log_dir / f"{state.version:020d}.checkpoint.parquet"
    tmp = log_dir / f".{final.name}.tmp"
    pq.write_table(pa.Table.from_pylist(rows, schema=delta_checkpoint.SCHEMA), tmp)
    os.replace(tmp, final)
    pointer = log_dir / f".{uuid.uuid4().hex}.tmp"
    pointer.write_text(json.dumps({"version": state.version, "size": len(rows)}))
    os.replace(pointer, log_dir / "_last_checkpoint")
    fsync_dir(log_dir)
    _prune(log_dir)


def _prune(log_dir: Path) -> None:
    """Delete commits and checkpoints older than the checkpoint before the newest one."""
    checkpoints = sorted(int(m.group(1)) for p in log_dir.iterdir() if (m := _CHECKPOINT.match(p.name)))
    if len(checkpoints) < 2:
        return
    keep_from = checkpoints[-2]
    for path in log_dir.iterdir():
        match = _COMMIT.match(path.name) or _CHECKPOINT.match(path.name)
        if match and int(match.group(1)) < keep_from:
            path.unlink(missing_ok=True)


def read_log(directory: Path) -> TableLog:
    """The state of the Delta table at ``directory`` (newest checkpoint, then later commits)."""
    log_dir = directory / LOG_DIR
    state = TableLog()
    if not log_dir.is_dir():
        return state
    checkpoints = sorted(int(m.group(1)) for p in log_dir.iterdir() if (m := _CHECKPOINT.match(p.name)))
    if checkpoints:
        import pyarrow.parquet as pq

        state.version = checkpoints[-1]
        for row in pq.read_table(log_dir / f"{state.version:020d}.checkpoint.parquet").to_pylist():
            _apply(state, row)
    commits = sorted(int(m.group(1)) for p in log_dir.iterdir() if (m := _COMMIT.match(p.name)))
    for version in (v for v in commits if v > state.version):
        for line in (log_dir / f"{version:020d}.json").read_text(encoding="utf-8").splitlines():
            if line.strip():
                _apply(state, json.loads(line))
        state.version = version
    return state


def _apply(state: TableLog, action: dict) -> None:
    if action.get("metaData"):
        state.metadata = dict(action["metaData"])
    if action.get("add"):
        add = {k: v for k, v in action["add"].items() if v is not None}
        add["partitionValues"] = dict(add.get("partitionValues") or {})
        state.files[add["path"]] = add
    if action.get("remove"):
        state.files.pop(action["remove"]["path"], None)


def listed_files(directory: Path) -> list[Path]:
    """The data files the Delta table at ``directory`` lists now (absolute paths)."""
    return sorted(directory / unquote(path) for path in read_log(directory).files)
