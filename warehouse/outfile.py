"""A file that takes another's place atomically: never wider, never half-written, no lasting leftover.

``replacing(out)`` hands out a file to write inside a private temporary
directory next to the target, ``.NAME.PID.RANDOM.tmp/`` (mode 0700, so nobody
else can open the data while it is being written, whatever the umask, and the
file itself is created 0600). When the writing succeeds it

1. gives the new file the target's owner, group and permission bits if the
   target exists (never more: if the group cannot be kept, the group bits are
   dropped; set-id and sticky bits are never carried over), else the mode any
   new file in that directory gets (0666 less the umask, as ``> file`` would);
2. fsyncs it, renames it over the target (atomic: a reader opens either the
   old file or the whole new one) and fsyncs the directory;
3. removes the temporary directory.

On any failure the target is untouched and the directory removed. A writer
killed mid-way (kill -9, a power cut) leaves its directory behind; the next
``replacing`` of the same target removes it. A directory counts as a dead
writer's only when the pid in its name is no live process *and* its lock is
free: the writer holds ``flock`` on it for its whole life, which also covers a
writer in another pid namespace.

Only a regular file is replaced. A symbolic link is refused (writing through it
would write where the command line does not say; replacing it would lose the
link), and so are directories, devices such as /dev/full, FIFOs and sockets. A
regular file this process may not write (a read-only 0400 file) is refused too.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import BinaryIO

# Bytes of the target's name kept in the temporary directory's name, so that with
# the pid, the random part and the dots it stays under NAME_MAX (255).
_NAME_BYTES = 200


class TargetError(Exception):
    """The target cannot be written; the message is one line for the user."""


def shown(path: Path | str) -> str:
    """``path`` for a one-line message: as it is, or quoted when it holds a line break or another control."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def check_target(out: Path) -> os.stat_result | None:
    """The target's ``lstat`` if it is a regular file this process may replace, None if it does not exist.

    Raises TargetError (one line) for anything else: a symbolic link, a directory,
    a device, a missing or unwritable directory, a NUL in the path.
    """
    if "\x00" in str(out):
        raise TargetError(f"cannot write {shown(out)}: the path contains a NUL byte")
    info = _stat_or_none(out, follow=False)
    if info is not None:
        if stat.S_ISLNK(info.st_mode):
            raise TargetError(f"cannot write {shown(out)}: it is a symbolic link (give the path of the file itself)")
        if stat.S_ISDIR(info.st_mode):
            raise TargetError(f"cannot write {shown(out)}: it is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise TargetError(f"cannot write {shown(out)}: it is not a regular file")
        if not os.access(out, os.W_OK):
            raise TargetError(f"cannot write {shown(out)}: Permission denied")
    parent = _stat_or_none(out.parent, follow=True)
    if parent is None:
        raise TargetError(f"cannot write {shown(out)}: No such file or directory")
    if not stat.S_ISDIR(parent.st_mode):
        raise TargetError(f"cannot write {shown(out)}: Not a directory")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise TargetError(f"cannot write {shown(out)}: Permission denied")
    return info


def _stat_or_none(path: Path, follow: bool) -> os.stat_result | None:
    try:
        return os.stat(path, follow_symlinks=follow)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TargetError(f"cannot write {shown(path)}: {exc.strerror}") from None


@contextmanager
def replacing(out: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """Yield ``(file, scratch_dir)``; on a clean exit the file replaces ``out`` as the module says.

    ``scratch_dir`` is the private directory holding the file, for the caller's own
    temporary files (removed with it). TargetError before anything is written if
    ``out`` cannot be replaced; OSError from writing, with ``out`` unchanged.
    """
    existing = check_target(out)
    prefix = f".{os.fsdecode(os.fsencode(out.name)[:_NAME_BYTES])}."
    sweep(out.parent, prefix)
    with ExitStack() as stack:
        try:
            workdir = stack.enter_context(private_dir(out.parent, prefix))
        except OSError as exc:
            raise TargetError(f"cannot write {shown(out)}: {exc.strerror}") from None
        mode = _final_mode(existing, workdir)
        tmp = workdir / "data"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as dest:
            yield dest, workdir
            dest.flush()
            _give(dest.fileno(), existing, mode)
            os.fsync(dest.fileno())
        check_target(out)  # still absent or a regular file: not turned into a link meanwhile
        os.replace(tmp, out)
        _fsync_dir(out.parent)


@contextmanager
def private_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A new 0700 directory ``<prefix><pid>.<random>.tmp`` in ``parent``, locked while in use, then removed."""
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}.", suffix=".tmp", dir=parent))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def sweep(parent: Path, prefix: str) -> int:
    """Remove what dead writers left in ``parent`` (``private_dir``s of ``prefix``); returns how many."""
    pattern = re.compile(re.escape(prefix) + r"(\d{1,10})\.[a-z0-9_]{8}\.tmp")
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return 0
    removed = 0
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and not _pid_alive(int(match.group(1))) and _remove_if_unlocked(entry):
            removed += 1
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # not ours to signal, or no pid at all: leave it alone
        return True
    return True


def _remove_if_unlocked(entry: os.DirEntry) -> bool:
    """Remove ``entry`` if it is our own real directory and no live writer holds its lock."""
    try:
        if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.geteuid():
            return False
        fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False  # a live writer holds it
    try:
        shutil.rmtree(entry.path, ignore_errors=True)
        return not os.path.lexists(entry.path)
    finally:
        os.close(fd)


def _final_mode(existing: os.stat_result | None, workdir: Path) -> int:
    """The target's permission bits, or those a new file gets here (umask, default ACLs): a probe says."""
    if existing is not None:
        return stat.S_IMODE(existing.st_mode) & 0o777
    probe = workdir / "mode-probe"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        return stat.S_IMODE(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
        probe.unlink()


def _give(fd: int, existing: os.stat_result | None, mode: int) -> None:
    """Owner, group and mode of the new file (see the module's docstring)."""
    if existing is not None:
        own = os.fstat(fd)
        if (own.st_uid, own.st_gid) != (existing.st_uid, existing.st_gid):
            for uid in (existing.st_uid, -1):  # root keeps both; others may keep the group
                try:
                    os.fchown(fd, uid, existing.st_gid)
                    break
                except OSError:
                    continue
            if os.fstat(fd).st_gid != existing.st_gid:
                mode &= ~0o070  # the group bits were meant for a group this file does not have
    os.fchmod(fd, mode)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable. After the rename the target is complete: a failure here is not an error."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot fsync a directory; the data itself was fsynced
    finally:
        os.close(fd)
