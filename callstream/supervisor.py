"""Run child processes in order with readiness checks; stop them all, in reverse, cleanly.

Each child runs in its own session (so the terminal's Ctrl-C reaches only the
supervisor, which then stops the children in a known order) with its output
in a log file. Stopping a child is SIGTERM to its whole process group, a
grace period, then SIGKILL to the group, and a wait until no process of the
group is left, so grandchildren (the simulator's generator, for one) go too.

Stopping never depends on being able to tell about it: a progress line that
cannot be written (stdout a closed pipe, a closed terminal) is dropped, and a
failure to stop one child does not keep the others from being stopped. A
second stop request (``hurry``) ends the grace periods: SIGKILL at once. If
the supervisor itself dies without stopping them (SIGKILL, the OOM killer),
Linux sends each child SIGTERM (:mod:`common.deathsig`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common.deathsig import tied_to_this_process


class ChildFailed(RuntimeError):
    """A child exited, or did not become ready in time; the message is one line."""


@dataclass(frozen=True)
class ChildSpec:
    """How to run one child and how to know it is ready."""

    name: str
    argv: Sequence[str]
    ready: Callable[[int], bool]  # called with the child's pid; True once it serves
    ready_timeout_s: float = 60.0
    stop_timeout_s: float = 20.0


@dataclass
class Child:
    """A running child: its spec, process and log file."""

    spec: ChildSpec
    process: subprocess.Popen
    log: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        """The child's pid (also its process group id)."""
        return self.process.pid


def group_alive(pgid: int) -> bool:
    """True while any process of the group exists (zombies of other parents included)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Supervisor:
    """Children started one after the other; ``stop`` ends them last-started first."""

    def __init__(self, logs: Path, env: Mapping[str, str], stop: threading.Event,
                 say: Callable[[str], None], hurry: threading.Event | None = None) -> None:
        self.logs = logs
        self.env = dict(env)
        self.stop_requested = stop
        self.hurry = hurry or threading.Event()
        self.say = say
        self.children: list[Child] = []

    def _tell(self, text: str) -> None:
        try:
            self.say(text)
        except Exception:  # noqa: BLE001 - a line nobody can read must not keep a child running
            pass

    def start(self, spec: ChildSpec) -> Child:
        """Start ``spec`` in its own session, output to ``<logs>/<name>.log``, and wait until ready.

        Call it from a thread that lives as long as the supervisor: Linux ends the
        child when the thread that started it ends (see :mod:`common.deathsig`).
        """
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{spec.name}.log"
        with open(log, "ab") as out:
            out.write(f"\n--- callstream up: starting {spec.name}: {' '.join(spec.argv)}\n".encode())
            out.flush()
            process = subprocess.Popen(tied_to_this_process(spec.argv), stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=self.env, start_new_session=True)
        child = Child(spec, process, log)
        self.children.append(child)
        self._wait_ready(child)
        return child

    def _wait_ready(self, child: Child) -> None:
        deadline = time.monotonic() + child.spec.ready_timeout_s
        while not self.stop_requested.is_set():
            self.check()
            try:
                if child.spec.ready(child.pid):
                    return
            except Exception:  # noqa: BLE001 - a probe that cannot tell yet means "not ready yet"
                pass
            if time.monotonic() > deadline:
                raise ChildFailed(f"{child.spec.name} was not ready within {child.spec.ready_timeout_s:g} s; "
                                  f"see {child.log}")
            self.stop_requested.wait(0.25)

    def check(self) -> None:
        """Raise ChildFailed if any child has exited."""
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                raise ChildFailed(f"{child.spec.name} exited with code {code}; see {child.log}")

    def watch(self, interval_s: float = 0.5) -> None:
        """Block until a stop is requested (returns) or a child exits (ChildFailed)."""
        while not self.stop_requested.wait(interval_s):
            self.check()

    def stop(self) -> None:
        """Stop every child, the last started first; each gets SIGTERM, then SIGKILL after its timeout.

        Every child is stopped even if stopping one of them fails; the first failure
        is raised once all have been dealt with.
        """
        failure: BaseException | None = None
        for child in reversed(self.children):
            try:
                self._stop_one(child)
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others
                failure = failure or exc
                _signal_group(child.pid, signal.SIGKILL)
        self.children.clear()
        if failure is not None:
            raise failure

    def _stop_one(self, child: Child) -> None:
        pgid = child.pid
        if child.process.poll() is None or group_alive(pgid):
            _signal_group(pgid, signal.SIGTERM)
            self._tell(f"stopping {child.spec.name}")
            if not _wait_group(child, child.spec.stop_timeout_s, self.hurry):
                if self.hurry.is_set():
                    self._tell(f"{child.spec.name}: stop requested again: killing it")
                else:
                    self._tell(f"{child.spec.name} did not stop within {child.spec.stop_timeout_s:g} s: "
                               "killing it")
                _signal_group(pgid, signal.SIGKILL)
                _wait_group(child, 10.0)
        child.process.wait()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _wait_group(child: Child, timeout_s: float, hurry: threading.Event | None = None) -> bool:
    """Wait until the child is reaped and its group is empty; False on timeout or once ``hurry`` is set."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (hurry is not None and hurry.is_set()):
        child.process.poll()  # reap the leader so that it does not linger as a zombie
        if child.process.returncode is not None and not group_alive(child.pid):
            return True
        time.sleep(0.05)
    return False
