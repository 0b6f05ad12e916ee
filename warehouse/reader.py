"""Lock-free readers: any number of processes query while the sink writes.

A :class:`Reader` is an in-memory DuckDB database whose views list the
Parquet files of the newest published manifest. Reading takes no lock on
anything: the files are immutable, the manifest is replaced atomically, and a
retired file stays on disk for a grace period after the last manifest that
listed it. Each :meth:`Reader.cursor` call first checks (one ``stat``)
whether a newer manifest was published and, if so, re-points the views, so
data is as fresh as the sink's last flush.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import duckdb

from warehouse import duck, views
from warehouse.layout import MANIFEST, Manifest, load_manifest


class WarehouseError(RuntimeError):
    """The warehouse cannot be read (wrong DuckDB version, unreadable manifest)."""


class Reader:
    """Read handle on the warehouse at ``root``; thread-safe (one cursor per query)."""

    def __init__(self, root: Path | str, *, memory_limit: str | None = None,
                 threads: int | None = None, temp_directory: str | None = None) -> None:
        self.root = Path(root)
        self._db = duck.connect(memory_limit=memory_limit, threads=threads,
                                temp_directory=temp_directory)
        self._db.execute("SET GLOBAL parquet_metadata_cache = true")
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._manifest: Manifest | None = None
        self._install(None)
        self.refresh()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def manifest(self) -> Manifest | None:
        """The manifest the views currently read (None: nothing published yet)."""
        return self._manifest

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.root / MANIFEST)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def refresh(self) -> bool:
        """Re-point the views if a newer manifest was published; True if they changed."""
        stamp = self._stat()
        if stamp == self._stamp:
            return False
        with self._lock:
            if stamp == self._stamp:
                return False
            try:
                manifest = load_manifest(self.root)
            except (ValueError, KeyError, TypeError) as exc:
                raise WarehouseError(f"unreadable manifest in {self.root}: {exc}") from None
            self._install(manifest)
            self._stamp = stamp
            return True

    def _install(self, manifest: Manifest | None) -> None:
        if manifest is not None and manifest.duckdb_version != duckdb.__version__:
            raise WarehouseError(
                f"the warehouse at {self.root} was written by DuckDB {manifest.duckdb_version}, "
                f"this process runs {duckdb.__version__}; pin one DuckDB version for every process")
        # Resolved: when the warehouse path is a symlink swapped to a rebuilt generation, views
        # made before the swap keep reading the old generation's files (kept for the grace period).
        location = self.root.resolve()
        con = self._db.cursor()
        try:
            con.execute("BEGIN")
            for statement in views.all_views(location, manifest):
                con.execute(statement)  # binds: reads each listed file's Parquet footer
            con.execute("COMMIT")
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot read the warehouse at {self.root}: "
                                 f"{str(exc).splitlines()[0]}") from None
        finally:
            con.close()
        self._manifest = manifest

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A fresh cursor over the newest data; close it (or use ``with``) when done."""
        self.refresh()
        return self._db.cursor()

    def close(self) -> None:
        """Close the in-memory database."""
        self._db.close()
