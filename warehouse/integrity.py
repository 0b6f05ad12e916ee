"""Is a warehouse file what the manifest says it is? Cheap checks always, thorough ones once.

A file of the warehouse can be deleted, truncated or overwritten behind the
writer's back (a disk error, an operator, a restore gone wrong). The checks,
cheapest first:

- **stat**: the file exists and has the size the manifest recorded — one
  ``stat`` per file, done by every reader whenever it installs a manifest;
- **footer**: DuckDB can read the Parquet metadata (what binding a view needs);
- **checksum**: the CRC-32C of the whole file equals the manifest's (the
  ``crc32c`` package, hardware-accelerated: ~5 GB/s from the page cache);
- **decode**: every value of every column decodes — the thorough check of a
  file whose manifest entry predates checksums.

Files are immutable, so a file that passed a footer or thorough check is
remembered (by path, inode, size and modification time) and not read again by
this process. Every check returns a one-line reason, or None when the file is
fine; none of them raises for a damaged file.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import crc32c as _crc32c
import duckdb

from warehouse.layout import DataFile

_CHUNK = 1 << 20


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (DuckDB's messages can run over many)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def file_crc32c(path: Path) -> int:
    """CRC-32C of a file's bytes, read in 1 MiB chunks."""
    crc = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            crc = _crc32c.crc32c(chunk, crc)
    return crc


def _stat(root: Path, data_file: DataFile) -> tuple[os.stat_result | None, str | None]:
    try:
        st = os.stat(root / data_file.path)
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return None, f"cannot stat: {exc.strerror}"
    if data_file.size is not None and st.st_size != data_file.size:
        return st, f"size {st.st_size} bytes, the manifest says {data_file.size}"
    return st, None


def footer_problem(con: duckdb.DuckDBPyConnection, path: Path) -> str | None:
    """Why DuckDB cannot read the Parquet footer of ``path``, or None."""
    try:
        con.execute("SELECT count(*) FROM parquet_metadata(?)", [str(path)]).fetchall()
    except duckdb.Error as exc:
        return f"unreadable Parquet footer: {first_line(exc)}"
    return None


def decode_problem(con: duckdb.DuckDBPyConnection, path: Path) -> str | None:
    """Why some value of ``path`` does not decode, or None (reads every column of every row)."""
    try:
        con.execute("SELECT count(*), min(hash(COLUMNS(*))) FROM read_parquet(?)", [str(path)]).fetchall()
    except duckdb.Error as exc:
        return f"undecodable data: {first_line(exc)}"
    return None


def stat_problem(root: Path, data_file: DataFile) -> str | None:
    """Why the file is not there with the size the manifest recorded, or None."""
    return _stat(root, data_file)[1]


def thorough_problem(root: Path, data_file: DataFile, con: duckdb.DuckDBPyConnection | None = None) -> str | None:
    """The stat check, then the checksum; or, when none was recorded and ``con`` is given, decode it all.

    Without a checksum and without ``con`` only the stat is checked.
    """
    problem = stat_problem(root, data_file)
    if problem:
        return problem
    path = root / data_file.path
    if data_file.crc32c is not None:
        try:
            crc = file_crc32c(path)
        except OSError as exc:
            return f"cannot read: {exc.strerror}"
        if crc != data_file.crc32c:
            return f"checksum {crc:08x}, the manifest says {data_file.crc32c:08x}"
        return None
    return decode_problem(con, path) if con is not None else None


class Verifier:
    """Checks files against their manifest entries, remembering the ones that passed (thread-safe)."""

    def __init__(self) -> None:
        self._footer_ok: set[tuple] = set()
        self._sound: set[tuple] = set()
        self._lock = threading.Lock()

    @staticmethod
    def _key(data_file: DataFile, st: os.stat_result) -> tuple:
        return (data_file.path, st.st_ino, st.st_size, st.st_mtime_ns)

    def stat(self, root: Path, data_file: DataFile) -> str | None:
        """The cheap check: the file exists with the recorded size."""
        return stat_problem(root, data_file)

    def footer(self, root: Path, data_file: DataFile, con: duckdb.DuckDBPyConnection) -> str | None:
        """The stat check, then (once per file) the Parquet footer."""
        st, problem = _stat(root, data_file)
        if problem or st is None:
            return problem
        key = self._key(data_file, st)
        if self._known(self._footer_ok, key):
            return None
        problem = footer_problem(con, root / data_file.path)
        if problem is None:
            self._remember(self._footer_ok, key)
        return problem

    def thorough(self, root: Path, data_file: DataFile,
                 con: duckdb.DuckDBPyConnection | None = None) -> str | None:
        """The stat check, then (once per file) :func:`thorough_problem`."""
        st, problem = _stat(root, data_file)
        if problem or st is None:
            return problem
        key = self._key(data_file, st)
        if self._known(self._sound, key):
            return None
        problem = thorough_problem(root, data_file, con)
        if problem is None and (data_file.crc32c is not None or con is not None):
            self._remember(self._sound, key)
        return problem

    def retain(self, paths: set[str]) -> None:
        """Forget every file but ``paths`` (the files of the manifest in use): memory stays bounded."""
        with self._lock:
            for seen in (self._footer_ok, self._sound):
                seen.intersection_update({key for key in seen if key[0] in paths})

    def _known(self, seen: set[tuple], key: tuple) -> bool:
        with self._lock:
            return key in seen

    def _remember(self, seen: set[tuple], key: tuple) -> None:
        with self._lock:
            seen.add(key)
