"""The warehouse on disk: immutable Parquet files and the manifest that lists them.

```
<warehouse>/
  manifest.json            the current snapshot (replaced atomically, never edited)
  writer.lock              flock of the one writer (the sink or a rebuild)
  data/<table>/delta/*.parquet         small files, one per table per flush
  data/<table>/base/<label>/*.parquet  compacted, deduplicated, one per partition label
  quarantine/<name>.parquet, .json     damaged files the writer took out, each with a note
```

A reader that loads ``manifest.json`` sees a consistent set of files; paths in
the manifest are relative to the warehouse root and use ``/``, so the same
layout works on an object store (Spark or Trino read the Parquet files listed
in the manifest).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
LOCK = "writer.lock"
DATA = "data"
QUARANTINE = "quarantine"
# 2 added each file's size, checksum and Kafka offsets, and the quarantine list; 1 is still read.
FORMAT = 2
READABLE_FORMATS = (1, 2)


@dataclass(frozen=True)
class DataFile:
    """One immutable Parquet file of a table."""

    path: str  # relative to the warehouse root, '/'-separated
    kind: str  # "base" or "delta"
    partition: str  # base partition label; "" for a delta
    rows: int
    ts_max_us: int | None  # newest value of the table's time column, for freshness
    labels: tuple[str, ...] = ()  # partition labels of the rows (what a delta may shadow)
    created_us: int = 0
    size: int | None = None  # bytes; None in manifests written before it was recorded
    crc32c: int | None = None  # CRC-32C of the whole file (integrity.py)
    # (partition, first offset, last offset) of a delta's source messages: where its rows are in Kafka.
    kafka_offsets: tuple[tuple[int, int, int], ...] = ()


@dataclass(frozen=True)
class Quarantined:
    """A damaged file the writer took out of the warehouse (the note beside it says the same)."""

    path: str  # where the manifest listed it
    moved_to: str | None  # quarantine/<name>.parquet; None when the file was already gone
    table: str
    kind: str
    partition: str
    rows: int  # rows the file held, as the manifest recorded them
    reason: str
    at_us: int
    labels: tuple[str, ...] = ()
    kafka_offsets: tuple[tuple[int, int, int], ...] = ()


@dataclass(frozen=True)
class Retired:
    """A file no manifest lists any more; deleted once readers had time to let go."""

    path: str
    retired_at_us: int


@dataclass(frozen=True)
class Manifest:
    """One published snapshot of the warehouse."""

    seq: int = 0
    published_at_us: int | None = None
    duckdb_version: str = ""
    files: Mapping[str, tuple[DataFile, ...]] = field(default_factory=dict)
    # topic -> partition -> next offset to consume: the sink resumes from here.
    offsets: Mapping[str, Mapping[int, int]] = field(default_factory=dict)
    retired: tuple[Retired, ...] = ()
    quarantined: tuple[Quarantined, ...] = ()

    def table_files(self, table: str, kind: str | None = None) -> tuple[DataFile, ...]:
        """The files of ``table``, optionally only one kind ("base" or "delta")."""
        files = self.files.get(table, ())
        return files if kind is None else tuple(f for f in files if f.kind == kind)

    def referenced(self) -> set[str]:
        """Relative paths of every file this manifest lists."""
        return {f.path for files in self.files.values() for f in files}

    def all_files(self) -> list[DataFile]:
        """Every file this manifest lists."""
        return [f for files in self.files.values() for f in files]

    def without(self, paths: set[str] | frozenset[str]) -> Manifest:
        """A copy listing none of ``paths`` (what a reader can read when those are damaged)."""
        if not paths:
            return self
        return replace(self, files={t: tuple(f for f in fs if f.path not in paths)
                                    for t, fs in self.files.items()})


def to_json(manifest: Manifest) -> bytes:
    """The manifest as UTF-8 JSON (offset keys become strings)."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "seq": manifest.seq,
        "published_at_us": manifest.published_at_us,
        "duckdb_version": manifest.duckdb_version,
        "files": {t: [f.__dict__ for f in files] for t, files in sorted(manifest.files.items())},
        "offsets": {t: {str(p): o for p, o in sorted(parts.items())}
                    for t, parts in sorted(manifest.offsets.items())},
        "retired": [r.__dict__ for r in manifest.retired],
        "quarantined": [q.__dict__ for q in manifest.quarantined],
    }
    return json.dumps(doc, indent=1, sort_keys=False).encode()


def from_json(data: bytes) -> Manifest:
    """Parse a manifest written by :func:`to_json`; ValueError on another format."""
    doc = json.loads(data)
    if doc.get("format") not in READABLE_FORMATS:
        raise ValueError(f"unknown warehouse manifest format {doc.get('format')!r}")
    return Manifest(
        seq=doc["seq"],
        published_at_us=doc["published_at_us"],
        duckdb_version=doc["duckdb_version"],
        files={t: tuple(DataFile(**_tuples(f)) for f in files) for t, files in doc["files"].items()},
        offsets={t: {int(p): o for p, o in parts.items()} for t, parts in doc["offsets"].items()},
        retired=tuple(Retired(**r) for r in doc["retired"]),
        quarantined=tuple(Quarantined(**_tuples(q)) for q in doc.get("quarantined", ())),
    )


def _tuples(entry: dict[str, Any]) -> dict[str, Any]:
    """A file entry with its JSON lists made tuples again (the dataclasses are frozen, hashable)."""
    return {**entry, "labels": tuple(entry.get("labels", ())),
            "kafka_offsets": tuple(tuple(r) for r in entry.get("kafka_offsets", ()))}


def load_manifest(root: Path) -> Manifest | None:
    """The published manifest of the warehouse at ``root``, or None if there is none yet."""
    try:
        data = (root / MANIFEST).read_bytes()
    except FileNotFoundError:
        return None
    return from_json(data)


def fsync_file(path: Path) -> None:
    """Force a file's bytes to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Force a directory's entries (a rename into it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_manifest(root: Path, manifest: Manifest) -> None:
    """Write temp + fsync + ``os.replace`` + fsync dir: readers see the old or the new one."""
    tmp = root / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as handle:
        handle.write(to_json(manifest))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, root / MANIFEST)
    fsync_dir(root)


def new_file_path(table: str, kind: str, partition: str = "") -> str:
    """A fresh, unique relative path for a new Parquet file."""
    name = f"{uuid.uuid4().hex}.parquet"
    if kind == "base":
        return f"{DATA}/{table}/base/{partition}/{name}"
    return f"{DATA}/{table}/delta/{name}"


def table_of(path: str) -> str:
    """The table a relative data path belongs to (``data/<table>/...``)."""
    return path.split("/")[1]


def tmp_path_for(final: Path) -> Path:
    """The temporary name a file is written under before its atomic rename."""
    return final.with_name(f".{final.name}.tmp")


def with_files(manifest: Manifest, table: str, files: tuple[DataFile, ...]) -> Manifest:
    """A copy of ``manifest`` with the file list of one table replaced."""
    new_files = dict(manifest.files)
    new_files[table] = files
    return replace(manifest, files=new_files)
