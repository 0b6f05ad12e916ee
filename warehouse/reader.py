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

import logging
import os
import threading
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import TypeVar

import duckdb

from warehouse import duck, integrity, views
from warehouse.integrity import first_line
from warehouse.layout import MANIFEST, DataFile, Manifest, load_manifest, table_of

log = logging.getLogger(__name__)
T = TypeVar("T")
# A damaged file makes DuckDB raise many kinds of error mid-query (IO, invalid input, even a bare
# Error from the Parquet metadata decoder); these kinds it never causes, so they are not looked into.
_NOT_FILE_ERRORS = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException,
                    duckdb.OutOfMemoryException, duckdb.InterruptException)


class _Everything:
    """Contains every table name: "check all of them thoroughly"."""

    def __contains__(self, item: object) -> bool:
        return True


_ALL = _Everything()


class WarehouseError(RuntimeError):
    """The warehouse cannot be read (wrong DuckDB version, unreadable manifest)."""


class Reader:
    """Read handle on the warehouse at ``root``; thread-safe (one cursor per query)."""

    def __init__(self, root: Path | str, *, memory_limit: str | None = None,
                 threads: int | None = None, temp_directory: str | None = None,
                 checksums: Collection[str] = ()) -> None:
        self.root = Path(root)
        # Tables whose files are checksummed before first use (the export: "cdrs"); the others
        # get the stat and footer checks, and the thorough one only once a query failed on them.
        self._checksums = frozenset(checksums)
        self._verifier = integrity.Verifier()
        self._skipped: dict[str, str] = {}
        self.generation = 0  # bumped at every (re-)installation of the views: a cache key
        self._db = duck.connect(memory_limit=memory_limit, threads=threads,
                                temp_directory=temp_directory)
        self._db.execute("SET GLOBAL parquet_metadata_cache = true")
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._manifest: Manifest | None = None
        self._install(None)
        self.refresh()

    def __enter__(self) -> Reader:
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

    def _install(self, manifest: Manifest | None, known_bad: dict[str, str] | None = None) -> None:
        """Point the views at the sound files of ``manifest``; remember the ones left out and why."""
        if manifest is not None and manifest.duckdb_version != duckdb.__version__:
            raise WarehouseError(
                f"the warehouse at {self.root} was written by DuckDB {manifest.duckdb_version}, "
                f"this process runs {duckdb.__version__}; pin one DuckDB version for every process")
        # Resolved: when the warehouse path is a symlink swapped to a rebuilt generation, views
        # made before the swap keep reading the old generation's files (kept for the grace period).
        location = self.root.resolve()
        if known_bad is None:  # a file found damaged stays so: its path is never reused
            listed = manifest.referenced() if manifest is not None else set()
            known_bad = {p: r for p, r in self._skipped.items() if p in listed}
        bad = dict(known_bad)
        if manifest is not None:
            bad.update(self._damaged(location, manifest.all_files(), checksummed=self._checksums))
        try:
            self._create_views(location, manifest, bad)
        except duckdb.Error as exc:
            # A footer DuckDB cannot read (its message may not even name the file): find which.
            found = self._unreadable_footers(location, manifest, bad)
            if not found:
                raise WarehouseError(f"cannot read the warehouse at {self.root}: {first_line(exc)}") from None
            bad.update(found)
            try:
                self._create_views(location, manifest, bad)
            except duckdb.Error as again:
                raise WarehouseError(f"cannot read the warehouse at {self.root}: {first_line(again)}") from None
        for path in sorted(set(bad) - set(self._skipped)):
            log.info("warehouse file skipped by this reader: %s (%s)", path, bad[path])
        self._manifest, self._skipped = manifest, bad
        self.generation += 1
        if manifest is not None:
            self._verifier.retain(manifest.referenced())

    def _create_views(self, location: Path, manifest: Manifest | None, bad: dict[str, str]) -> None:
        usable = manifest.without(frozenset(bad)) if manifest is not None else None
        try:
            self._run_views(views.all_views(location, usable))
        except duckdb.Error:
            if not views.materialized(usable):
                raise
            # Materializing the deltas reads them whole: a damaged one fails here, not only its
            # footer. The plain views leave finding it to the first query (read()), as before.
            self._run_views(views.all_views(location, usable, materialize=False))

    def _run_views(self, statements: list[str]) -> None:
        con = self._db.cursor()
        try:
            con.execute("BEGIN")
            for statement in statements:
                con.execute(statement)  # binds: reads each listed file's Parquet footer
            con.execute("COMMIT")
        except duckdb.Error:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def _damaged(self, location: Path, files: Iterable[DataFile], *, checksummed: Collection[str] = (),
                 con: duckdb.DuckDBPyConnection | None = None) -> dict[str, str]:
        """path -> reason of the damaged ``files``: stat for all, the thorough check for ``checksummed`` tables."""
        bad = {}
        for data_file in files:
            if table_of(data_file.path) in checksummed:
                problem = self._verifier.thorough(location, data_file, con)
            else:
                problem = self._verifier.stat(location, data_file)
            if problem:
                bad[data_file.path] = problem
        return bad

    def _unreadable_footers(self, location: Path, manifest: Manifest | None,
                            bad: dict[str, str]) -> dict[str, str]:
        if manifest is None:
            return {}
        con = self._db.cursor()
        try:
            found = {}
            for data_file in manifest.all_files():
                if data_file.path not in bad:
                    problem = self._verifier.footer(location, data_file, con)
                    if problem:
                        found[data_file.path] = problem
            return found
        finally:
            con.close()

    @property
    def skipped(self) -> dict[str, str]:
        """Files of the manifest in use that this reader leaves out, with the reason: path -> reason."""
        return dict(self._skipped)

    def read(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """``work(cursor)``; when it fails on a damaged file, once more without that file.

        Every named query goes through here, so a file that goes bad while the manifest
        that lists it is in use costs one failed attempt, not every query after it.
        """
        con = self.cursor()
        try:
            return work(con)
        except duckdb.Error as exc:
            if isinstance(exc, _NOT_FILE_ERRORS) or not self._leave_out_damaged(exc):
                raise
        finally:
            con.close()
        con = self.cursor()
        try:
            return work(con)
        finally:
            con.close()

    def _leave_out_damaged(self, exc: BaseException) -> bool:
        """After a query failed: check the files in use thoroughly; True if some were left out."""
        with self._lock:
            manifest = self._manifest
            if manifest is None:
                return False
            location = self.root.resolve()
            in_use = [f for f in manifest.all_files() if f.path not in self._skipped]
            named = [f for f in in_use if f.path in str(exc)]  # DuckDB usually names the file
            con = self._db.cursor()
            try:
                found = self._damaged(location, named, checksummed=_ALL, con=con)
                if not found:
                    found = self._damaged(location, in_use, checksummed=_ALL, con=con)
            finally:
                con.close()
            if not found:
                return False
            self._install(manifest, {**self._skipped, **found})
            return True

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A fresh cursor over the newest data; close it (or use ``with``) when done."""
        self.refresh()
        return self._db.cursor()

    def close(self) -> None:
        """Close the in-memory database."""
        self._db.close()
