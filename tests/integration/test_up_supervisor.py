"""The supervisor with real child processes: readiness, death, reverse-order stop, no leftovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from callstream.supervisor import ChildFailed, ChildSpec, Supervisor, group_alive
from common.deathsig import tied_to_this_process

pytestmark = [pytest.mark.integration, pytest.mark.alone]  # kills or times processes: nothing beside it

# A child that starts a grandchild in its own process group, writes a marker and sleeps;
# with "stubborn" it ignores SIGTERM (and so does its grandchild).
CHILD = """
import os, signal, subprocess, sys, time
if sys.argv[2] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN) "
                  "if %r == 'stubborn' else None; time.sleep(600)" % sys.argv[2]])
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(600)
"""


def _spec(tmp: Path, name: str, mode: str = "polite", **kw) -> ChildSpec:
    marker = tmp / f"{name}.ready"
    return ChildSpec(name, [sys.executable, "-c", CHILD, str(marker), mode],
                     ready=lambda _pid: marker.exists(), **kw)


def _supervisor(tmp: Path, said: list[str]) -> Supervisor:
    return Supervisor(tmp / "logs", dict(os.environ), threading.Event(), said.append)


def _family(child) -> list[psutil.Process]:
    return [psutil.Process(child.pid), *psutil.Process(child.pid).children(recursive=True)]


def test_start_in_order_then_stop_in_reverse_leaving_nothing(tmp_path: Path) -> None:
    said: list[str] = []
    sup = _supervisor(tmp_path, said)
    first = sup.start(_spec(tmp_path, "first"))
    second = sup.start(_spec(tmp_path, "second", "stubborn", stop_timeout_s=1.0))
    family = _family(first) + _family(second)
    assert len(family) == 4 and first.pid != second.pid
    assert os.getpgid(first.pid) == first.pid and os.getpgid(second.pid) == second.pid  # own groups
    assert psutil.Process(first.pid).ppid() == os.getpid()
    assert (first.log.parent / "first.log").exists()
    sup.stop()
    assert said == ["stopping second", "second did not stop within 1 s: killing it", "stopping first"]
    time.sleep(0.1)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in family)
    assert not group_alive(first.pid) and not group_alive(second.pid)


def test_a_child_that_dies_is_reported(tmp_path: Path) -> None:
    sup = _supervisor(tmp_path, [])
    sup.start(_spec(tmp_path, "steady"))
    dying = ChildSpec("dying", [sys.executable, "-c", "import sys, time; time.sleep(0.3); sys.exit(3)"],
                      ready=lambda _pid: True)
    sup.start(dying)
    with pytest.raises(ChildFailed, match=r"dying exited with code 3; see .*dying\.log"):
        sup.watch(interval_s=0.05)
    sup.stop()


def test_a_child_that_never_gets_ready_times_out(tmp_path: Path) -> None:
    sup = _supervisor(tmp_path, [])
    never = ChildSpec("never", [sys.executable, "-c", "import time; time.sleep(60)"], ready=lambda _pid: False,
                      ready_timeout_s=0.5)
    with pytest.raises(ChildFailed, match="never was not ready within 0.5 s"):
        sup.start(never)
    sup.stop()
    assert not sup.children


def test_a_child_that_exits_during_start_up_is_reported(tmp_path: Path) -> None:
    sup = _supervisor(tmp_path, [])
    broken = ChildSpec("broken", [sys.executable, "-c", "print('bad config'); raise SystemExit(2)"],
                       ready=lambda _pid: False)
    with pytest.raises(ChildFailed, match="broken exited with code 2"):
        sup.start(broken)
    assert "bad config" in (tmp_path / "logs" / "broken.log").read_text()
    sup.stop()


def test_a_stop_request_ends_the_wait_for_readiness(tmp_path: Path) -> None:
    sup = _supervisor(tmp_path, [])
    slow = ChildSpec("slow", [sys.executable, "-c", "import time; time.sleep(60)"], ready=lambda _pid: False)
    threading.Timer(0.3, sup.stop_requested.set).start()
    started = time.monotonic()
    sup.start(slow)
    assert time.monotonic() - started < 5
    sup.stop()


# A supervisor in a process of its own: starts one sleeping child, prints its pid, waits.
SUPERVISOR = """
import os, sys, threading, time
from pathlib import Path
from callstream.supervisor import ChildSpec, Supervisor
sup = Supervisor(Path(sys.argv[1]), dict(os.environ), threading.Event(), print)
child = sup.start(ChildSpec("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"],
                            ready=lambda _pid: True))
print(child.pid, flush=True)
time.sleep(600)
"""


def test_children_do_not_outlive_a_killed_supervisor(tmp_path: Path) -> None:
    """kill -9 of the supervisor (or the OOM killer): Linux ends its children for it."""
    supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(tmp_path / "logs")],
                                  stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = psutil.Process(int(supervisor.stdout.readline()))
        supervisor.kill()
        supervisor.wait()
        deadline = time.monotonic() + 10
        while child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child outlived its supervisor"
            time.sleep(0.05)
    finally:
        supervisor.kill()
        supervisor.wait()
        if child is not None and child.is_running():
            child.kill()


def test_a_failing_progress_line_does_not_stop_the_stop(tmp_path: Path) -> None:
    """``say`` raising (stdout a closed pipe) must not keep a child from being signalled."""
    def say(_text: str) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    sup = Supervisor(tmp_path / "logs", dict(os.environ), threading.Event(), say)
    first = sup.start(_spec(tmp_path, "first"))
    second = sup.start(_spec(tmp_path, "second"))
    family = _family(first) + _family(second)
    try:
        sup.stop()
        time.sleep(0.1)
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in family)
        assert not sup.children
    finally:
        for process in family:
            if process.is_running():
                process.kill()


PDEATHSIG = ("import ctypes; sig = ctypes.c_int(); "
             "ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0); print(sig.value)")  # 2: PR_GET_PDEATHSIG


def test_the_trampoline_asks_for_sigterm_and_runs_the_command_as_given() -> None:
    """PR_GET_PDEATHSIG in the exec'd command: the request survives exec; argv arrives unchanged."""
    argv = tied_to_this_process([sys.executable, "-c", PDEATHSIG + "; import sys; print(sys.argv[1:])", "a b", ""])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(int(signal.SIGTERM)), "['a b', '']"]
    plain = subprocess.run([sys.executable, "-c", PDEATHSIG], capture_output=True, text=True, timeout=30)
    assert plain.stdout.strip() == "0"  # no request without the trampoline


def test_the_trampoline_runs_nothing_once_its_parent_is_gone(tmp_path: Path) -> None:
    """The parent may die before prctl: the child must notice and not run on unsupervised."""
    argv = tied_to_this_process([sys.executable, "-c", f"open({str(tmp_path / 'ran')!r}, 'w')"])
    argv[argv.index(str(os.getpid()))] = "1"  # as if the parent had died and init had adopted it
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and not (tmp_path / "ran").exists()


def test_the_trampoline_reports_a_missing_command_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(tied_to_this_process([str(tmp_path / "no-such-command")]), capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 127
    assert done.stderr.splitlines() == [f"cannot run {tmp_path / 'no-such-command'}: No such file or directory"]
