"""``export --out`` (issue 12, finding 10): never wider, never half, atomic; hostile targets in one line.

Every case runs the real command in a subprocess (or, for arguments a shell
cannot pass, its ``main`` in-process) on a real DuckDB warehouse.
"""

from __future__ import annotations

import fcntl
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from callstream import cli
from tests.integration.export_samples import CALLS, expected_csv, export_cdr, run_export
from tests.integration.sink_data import Feed
from warehouse import compaction
from warehouse.writer import Writer

pytestmark = pytest.mark.integration

RANGE = ("--from", "2026-11-24", "--to", "2026-12-01")
OLD = b"yesterday's export\r\n"


@pytest.fixture
def warehouse(tmp_path) -> Path:
    root = tmp_path / "warehouse"
    with Writer(root) as writer:
        feed = Feed(writer)
        feed.send("cdrs", *CALLS[:4])
        compaction.major(writer, "cdrs")
        feed.send("cdrs", *CALLS[4:])
    return root


@pytest.fixture(scope="module")
def big_warehouse(tmp_path_factory) -> Path:
    """60,000 calls: an export long enough (megabytes) to be killed in the middle."""
    root = tmp_path_factory.mktemp("big") / "warehouse"
    with Writer(root) as writer:
        Feed(writer).send("cdrs", *(export_cdr(f"call-{n:05d}", f"2026-11-{1 + n % 28:02d}T10:00:00.000Z")
                                    for n in range(60_000)))
    return root


def _one_line_error(result: subprocess.CompletedProcess, code: int = 1) -> str:
    assert result.returncode == code, result.stderr
    assert result.stdout == b"" and b"Traceback" not in result.stderr
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o604], ids=oct)
def test_replacing_a_file_keeps_its_mode(warehouse, tmp_path, mode):
    """A 0600 billing file stays 0600: the export never makes it readable by more people."""
    target = tmp_path / "billing.csv"
    target.write_bytes(OLD)
    target.chmod(mode)
    result = run_export(warehouse, *RANGE, "--out", str(target))
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == expected_csv(CALLS)
    assert stat.S_IMODE(target.stat().st_mode) == mode


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)], ids=["022", "027", "077"])
def test_a_new_file_gets_what_the_umask_allows(warehouse, tmp_path, umask, mode):
    target = tmp_path / "new.csv"
    result = subprocess.run([sys.executable, "-m", "callstream.cli", "export", "--warehouse", str(warehouse),
                             *RANGE, "--out", str(target)], capture_output=True, timeout=120, umask=umask)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user takes root (as CI runs)")
def test_replacing_another_users_file_keeps_its_owner_and_group(warehouse, tmp_path):
    """Otherwise the group bits of 0640 would apply to the exporter's group, not the file's."""
    target = tmp_path / "billing.csv"
    target.write_bytes(OLD)
    os.chown(target, 4321, 4322)
    target.chmod(0o640)
    assert run_export(warehouse, *RANGE, "--out", str(target)).returncode == 0
    info = target.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4321, 4322, 0o640)


def _partial_leftover(out_dir: Path, target: Path) -> bool:
    """True once something other than the target holds data in ``out_dir``: the export is mid-way."""
    for path in out_dir.rglob("*"):
        if path != target and path.is_file() and path.stat().st_size > 0:
            return True
    return False


def test_kill_9_mid_export_leaves_the_old_file_and_the_next_export_cleans_up(big_warehouse, tmp_path):
    whole = run_export(big_warehouse, "--from", "2026-11-01", "--to", "2026-12-01").stdout
    assert whole.count(b"\r\n") == 60_001
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "billing.csv"
    target.write_bytes(OLD)
    target.chmod(0o600)
    for _attempt in range(3):  # a loaded machine may let an export finish between two looks
        process = subprocess.Popen([sys.executable, "-m", "callstream.cli", "export", "--warehouse",
                                    str(big_warehouse), "--from", "2026-11-01", "--to", "2026-12-01",
                                    "--out", str(target)], stderr=subprocess.DEVNULL)
        try:
            while not _partial_leftover(out_dir, target) and process.poll() is None:
                time.sleep(0.001)
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait()
        if process.returncode == -signal.SIGKILL:
            break
        target.write_bytes(OLD)
    assert process.returncode == -signal.SIGKILL, "no export could be killed mid-way"
    assert target.read_bytes() in (OLD, whole)  # in practice OLD: killed mid-write
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert len(list(out_dir.iterdir())) > 1  # what the killed export left

    again = run_export(big_warehouse, "--from", "2026-11-01", "--to", "2026-12-01", "--out", str(target))
    assert again.returncode == 0, again.stderr
    assert [p.name for p in out_dir.iterdir()] == ["billing.csv"]
    assert target.read_bytes() == whole and stat.S_IMODE(target.stat().st_mode) == 0o600


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_the_leftovers_of_dead_exports_are_removed(warehouse, tmp_path):
    """A temp dir whose export is alive (it holds the dir's lock) is left alone, even if its pid looks dead."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dead = out_dir / f".billing.csv.{_dead_pid()}.abcd1234.tmp"
    dead.mkdir()
    (dead / "data").write_bytes(b"call_id,portal_id\r\nhalf a ro")
    alive = out_dir / f".billing.csv.{_dead_pid()}.efgh5678.tmp"  # another pid namespace, say
    alive.mkdir()
    unrelated = [out_dir / ".billing.csv.notes", out_dir / ".other.csv.1.abcd1234.tmp"]
    unrelated[0].write_text("mine")
    unrelated[1].mkdir()
    lock = os.open(alive, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = run_export(warehouse, *RANGE, "--out", str(out_dir / "billing.csv"))
    finally:
        os.close(lock)
    assert result.returncode == 0, result.stderr
    expected = ["billing.csv", alive.name, *(p.name for p in unrelated)]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(expected)


def test_a_symlink_target_is_refused_and_nothing_is_touched(warehouse, tmp_path):
    """Following the link would write somewhere the command line does not name; replacing it, lose it."""
    real = tmp_path / "elsewhere.csv"
    real.write_bytes(OLD)
    link = tmp_path / "billing.csv"
    link.symlink_to(real)
    line = _one_line_error(run_export(warehouse, *RANGE, "--out", str(link)))
    assert line == (f"callstream export: error: cannot write {link}: it is a symbolic link "
                    "(give the path of the file itself)")
    assert link.is_symlink() and os.readlink(link) == str(real) and real.read_bytes() == OLD


def test_a_target_that_is_not_a_regular_file_is_refused(warehouse, tmp_path):
    fifo = tmp_path / "billing.csv"
    os.mkfifo(fifo)
    line = _one_line_error(run_export(warehouse, *RANGE, "--out", str(fifo)))
    assert line == f"callstream export: error: cannot write {fifo}: it is not a regular file"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_dev_full_is_refused_and_stays_a_device(warehouse):
    line = _one_line_error(run_export(warehouse, *RANGE, "--out", "/dev/full"))
    assert line == "callstream export: error: cannot write /dev/full: it is not a regular file"
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)


def test_a_directory_and_an_unwritable_directory_are_one_line(warehouse, tmp_path):
    line = _one_line_error(run_export(warehouse, *RANGE, "--out", str(tmp_path)))
    assert line == f"callstream export: error: cannot write {tmp_path}: it is a directory"
    # /sys refuses new files even to root, which chmod cannot do.
    line = _one_line_error(run_export(warehouse, *RANGE, "--out", "/sys/billing.csv"))
    assert line.startswith("callstream export: error: cannot write /sys/billing.csv: ")


def test_a_nul_or_a_line_break_in_the_path_is_one_line(warehouse, tmp_path, capsys):
    """A NUL cannot come through exec's argv, only through ``main``; a line break can."""
    with pytest.raises(SystemExit) as exited:  # how argparse ends a usage error
        cli.main(["export", "--warehouse", str(warehouse), *RANGE, "--out", str(tmp_path / "a\x00b.csv")])
    captured = capsys.readouterr()
    assert exited.value.code == 2 and captured.out == ""
    assert captured.err.splitlines() == ["callstream export: error: argument --out: the path contains a NUL byte"]
    bad = tmp_path / "no\nsuch" / "b.csv"
    line = _one_line_error(run_export(warehouse, *RANGE, "--out", str(bad)))
    assert line == f"callstream export: error: cannot write {str(bad)!r}: No such file or directory"


def test_an_export_to_stdout_sweeps_dead_exports_chunks_too(warehouse, tmp_path):
    """Its chunks live in a private directory under TMPDIR; a killed one's is removed by the next."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    dead = scratch / f"callstream-export.{_dead_pid()}.abcd1234.tmp"
    dead.mkdir()
    (dead / "chunk-000000.csv").write_bytes(b"call_id,portal_id\r\nhalf")
    result = subprocess.run([sys.executable, "-m", "callstream.cli", "export", "--warehouse", str(warehouse),
                             *RANGE], capture_output=True, timeout=120, env=dict(os.environ, TMPDIR=str(scratch)))
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected_csv(CALLS)
    assert list(scratch.iterdir()) == []
