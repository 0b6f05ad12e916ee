"""``callstream up`` stopped every way a user stops it leaves no process behind (issue 12, finding 7).

The command runs as ``tests.integration.up_dummies``: the real ``up`` (its
signal handling, its output, the Pipeline and the Supervisor) with two small
sleeping children, each with a grandchild, instead of Kafka's processes. The
terminal cases run it on a pseudo-terminal, so that Ctrl-C and a closed
terminal are what the kernel makes of them, not signals the test picks.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.alone]  # kills or times processes: nothing beside it

HARNESS = [sys.executable, "-m", "tests.integration.up_dummies"]
READY = b"Ctrl-C stops everything"


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_gone(processes: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    while _alive(processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _alive(processes)


def _kill(processes: list[psutil.Process]) -> None:
    """Clean up after a failing run: nothing of a test may outlive it."""
    for process in _alive(processes):
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def _family(pid: int, expected: int) -> list[psutil.Process]:
    """The process ``pid`` and its descendants, once there are ``expected`` of them."""
    deadline = time.monotonic() + 10
    while True:
        family = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        if len(family) >= expected or time.monotonic() > deadline:
            return family
        time.sleep(0.05)


def _read_until(fd: int, marker: bytes, timeout_s: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout_s
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} within {timeout_s} s; output: {seen!r}"
        if select.select([fd], [], [], left)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the other side of the terminal is gone
                chunk = b""
            assert chunk, f"output ended before {marker!r}: {seen!r}"
            seen += chunk
    return seen


def _in_terminal(argv: list[str]) -> tuple[int, int]:
    """Run ``argv`` as the session leader of a new pseudo-terminal; returns (pid, master fd)."""
    pid, master = pty.fork()
    if pid == 0:  # pragma: no cover - the child replaces itself at once
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    return pid, master


def test_ctrl_c_on_up_piped_to_tee_leaves_nothing(tmp_path: Path) -> None:
    """The finding as reported: ``callstream up | tee up.log`` in a terminal, then Ctrl-C.

    The terminal's SIGINT reaches ``up`` and ``tee`` alike; ``tee`` dies, so every
    line ``up`` writes while stopping goes to a closed pipe.
    """
    shell_line = " ".join([*HARNESS, str(tmp_path / "logs"), "|", "tee", str(tmp_path / "up.log")])
    pid, master = _in_terminal(["/bin/sh", "-c", shell_line])
    family: list[psutil.Process] = []
    try:
        _read_until(master, READY, 60)
        family = _family(pid, 7)  # sh, up, tee, two children, two grandchildren
        assert len(family) == 7, [p.cmdline() for p in family]
        os.write(master, b"\x03")  # Ctrl-C
        left = _wait_gone(family, 30)
        assert not left, [p.cmdline() for p in left]
    finally:
        _kill(family)
        os.close(master)
        os.waitpid(pid, 0)
    assert b"ready (pid" in (tmp_path / "up.log").read_bytes()


def test_closing_the_terminal_leaves_nothing(tmp_path: Path) -> None:
    """``up`` in a terminal that goes away: SIGHUP, and every later write fails with EIO."""
    pid, master = _in_terminal([*HARNESS, str(tmp_path / "logs")])
    family: list[psutil.Process] = []
    try:
        _read_until(master, READY, 60)
        family = _family(pid, 5)  # up, two children, two grandchildren
        assert len(family) == 5, [p.cmdline() for p in family]
        os.close(master)  # the terminal window closes
        master = -1
        left = _wait_gone(family, 30)
        assert not left, [p.cmdline() for p in left]
    finally:
        _kill(family)
        if master >= 0:
            os.close(master)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["INT", "TERM", "HUP"])
def test_a_signal_with_stdout_a_closed_pipe_leaves_nothing(tmp_path: Path, signum: int) -> None:
    up = subprocess.Popen([*HARNESS, str(tmp_path / "logs")], stdout=subprocess.PIPE,
                          stderr=open(tmp_path / "stderr", "wb"))
    family: list[psutil.Process] = []
    try:
        _read_until(up.stdout.fileno(), READY, 60)
        family = _family(up.pid, 5)
        up.stdout.close()  # whoever read our output is gone
        up.send_signal(signum)
        assert up.wait(timeout=30) == 0, (tmp_path / "stderr").read_text()
        left = _wait_gone(family, 5)
        assert not left, [p.cmdline() for p in left]
    finally:
        _kill(family)
        up.kill()
        up.wait()
    assert (tmp_path / "stderr").read_bytes() == b""


def test_a_second_ctrl_c_while_stopping_kills_at_once_and_leaves_nothing(tmp_path: Path) -> None:
    """The stubborn child has a 60 s grace period; a second Ctrl-C ends the wait, not the stop."""
    up = subprocess.Popen([*HARNESS, str(tmp_path / "logs"), "stubborn"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    family: list[psutil.Process] = []
    try:
        _read_until(up.stdout.fileno(), READY, 60)
        family = _family(up.pid, 5)
        up.send_signal(signal.SIGINT)
        _read_until(up.stdout.fileno(), b"stopping second", 10)
        started = time.monotonic()
        up.send_signal(signal.SIGINT)
        rest, _ = up.communicate(timeout=30)
        assert time.monotonic() - started < 10
        assert up.returncode == 0, rest
        assert b"killing" in rest and b"stopped" in rest and b"Traceback" not in rest
        left = _wait_gone(family, 5)
        assert not left, [p.cmdline() for p in left]
    finally:
        _kill(family)
        up.kill()
        up.wait()
