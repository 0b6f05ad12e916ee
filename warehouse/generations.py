"""Warehouse generations: build a new one aside, swap it in with one atomic step.

``CALLSTREAM_WAREHOUSE`` (``var/warehouse`` say) becomes a symlink to a
generation directory next to it::

    var/warehouse -> warehouse.gen-20261126T120000Z-3f9a1c
    var/warehouse.gen-20261126T120000Z-3f9a1c/   the current generation
    var/warehouse.gen-20261101T080000Z-77ab02/   the previous one (kept: compare, roll back)
    var/.warehouse.rebuild-<stamp>/              a rebuild in progress (never read)

A rebuild writes into its hidden ``.rebuild-`` directory (holding that
directory's writer lock); only when it is complete is the directory renamed to
a ``.gen-`` name and the link repointed with ``rename(2)`` over it, so a reader
sees the old generation or the new one, never a mix, and keeps reading the
old one's files for queries already planned (readers resolve the link per
manifest, reader.py). The first swap of a warehouse that is still a plain
directory exchanges the directory and a new link in one ``renameat2``
(``RENAME_EXCHANGE``) call; queries in flight at that instant may fail once,
since their paths named the directory itself. An interrupted rebuild leaves
its ``.rebuild-`` directory, which the next rebuild deletes (its lock is free).
Generations older than the previous one are deleted at each swap.

A few files of a warehouse are not derived from the topics and would be lost
by a rebuild: the dashboard's account store (users, session secret, audit
log; ``CARRIED``). The swap carries them into the new generation as hard
links to the same file, taken while holding SQLite's write lock on it, so a
user added or an audit entry written at the very moment of the swap lands in
the file both generations name (a file system without hard links gets a copy
made under the same lock).
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from warehouse.layout import LOCK, fsync_dir
from warehouse.writer import WriterBusy, release_lock, take_lock

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
# SQLite files in a warehouse directory that no replay can make again (dashboards/accounts.py).
CARRIED = ("accounts.sqlite",)


@dataclass(frozen=True)
class Swap:
    """Where the warehouse now points, and the generation it replaced (None: first one)."""

    current: Path
    previous: Path | None


def new_stamp() -> str:
    """A sortable, unique generation stamp: UTC time plus a few random hex digits."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def building_dir(target: Path, stamp: str) -> Path:
    """The hidden directory a rebuild of ``target`` writes into until it is complete."""
    return target.parent / f".{target.name}.rebuild-{stamp}"


def generation_dir(target: Path, stamp: str) -> Path:
    """The directory of a complete generation of ``target``."""
    return target.parent / f"{target.name}.gen-{stamp}"


def sweep_abandoned(target: Path, keep: Path | None = None) -> list[Path]:
    """Delete the ``.rebuild-`` directories of ``target`` no running rebuild holds (but ``keep``,
    an interrupted rebuild about to be continued); their paths."""
    swept = []
    for path in sorted(target.parent.glob(f".{target.name}.rebuild-*")):
        if not path.is_dir() or path.is_symlink() or path == keep:
            continue
        try:
            fd = take_lock(path / LOCK)
        except WriterBusy:
            continue  # another rebuild is writing it
        except OSError:
            fd = None
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            if fd is not None:
                release_lock(fd)
        swept.append(path)
    return swept


def discard(building: Path) -> None:
    """Delete an unfinished rebuild's directory."""
    shutil.rmtree(building, ignore_errors=True)


def publish_at(building: Path, target: Path) -> None:
    """``--to``: move a complete rebuild to ``target`` (which must not exist)."""
    os.rename(building, target)
    fsync_dir(target.parent)


def swap_in(building: Path, live: Path, stamp: str) -> Swap:
    """Make the complete rebuild at ``building`` the warehouse at ``live``, atomically."""
    current = generation_dir(live, stamp)
    os.rename(building, current)
    link = live.parent / f".{live.name}.swap-{uuid.uuid4().hex[:8]}"
    link.symlink_to(current.name)  # relative: the tree can be moved as a whole
    previous: Path | None = None
    with ExitStack() as held:
        if live.is_dir():  # a plain directory or a link to the current generation
            for name in CARRIED:
                held.enter_context(carried(live / name, current / name))
        previous = _switch(link, live, stamp)
    fsync_dir(live.parent)
    _prune(live, keep={current, previous})
    return Swap(current, previous)


def _switch(link: Path, live: Path, stamp: str) -> Path | None:
    """Point ``live`` where ``link`` points; the generation it named before (None: none)."""
    previous: Path | None = None
    try:
        if live.is_symlink():
            previous = live.resolve()
            os.replace(link, live)
        elif live.is_dir():
            previous = generation_dir(live, f"before-{stamp}")
            _exchange(link, live)  # live is now the link, ``link`` the old directory
            os.rename(link, previous)
        elif live.exists():
            raise FileExistsError(f"{live} is neither a directory nor a symlink")
        else:
            os.replace(link, live)
    finally:
        if link.is_symlink():
            link.unlink()
    return previous


@contextmanager
def carried(source: Path, target: Path) -> Iterator[bool]:
    """Make the SQLite file ``source`` also ``target`` while the caller swaps; True when there was one.

    SQLite's write lock on ``source`` is held from before the link until the block ends, so
    no transaction is half written at the link (a crashed writer's journal is rolled back by
    taking the lock) and no writer slips in between a copy and the swap.
    """
    if not source.is_file():
        yield False
        return
    con = sqlite3.connect(source, timeout=30, isolation_level=None)
    with closing(con):
        con.execute("BEGIN IMMEDIATE")  # the write lock: readers go on, writers wait for the swap
        try:
            target.unlink(missing_ok=True)
            try:
                os.link(source, target)
            except OSError:  # no hard links here: a copy, made under the same lock
                with closing(sqlite3.connect(target)) as out:
                    con.backup(out)
                os.chmod(target, 0o600)
            fsync_dir(target.parent)
            yield True
        finally:
            con.execute("ROLLBACK")


def _exchange(a: Path, b: Path) -> None:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Where the call or the file system lacks it, two renames: for an instant the
    warehouse path does not exist and a reader sees an empty warehouse.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None and renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b),
                                           _RENAME_EXCHANGE) == 0:
        return
    code = ctypes.get_errno() if renameat2 is not None else errno.ENOSYS
    if code not in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        raise OSError(code, f"cannot exchange {a} and {b}: {os.strerror(code)}")
    aside = b.with_name(f".{b.name}.aside-{uuid.uuid4().hex[:8]}")
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)


def _prune(live: Path, keep: set[Path | None]) -> None:
    """Delete this warehouse's generations other than ``keep`` (only our own ``.gen-`` names)."""
    kept = {p.resolve() for p in keep if p is not None}
    for path in live.parent.glob(f"{live.name}.gen-*"):
        if path.is_dir() and not path.is_symlink() and path.resolve() not in kept:
            shutil.rmtree(path, ignore_errors=True)
