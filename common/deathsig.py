"""Children that Linux ends when the process that started them dies, however it dies.

A supervisor stops its children itself on every signal it can catch; this is
the backstop for the ones it cannot (SIGKILL, the OOM killer, a crash): the
child asks the kernel, with ``prctl(PR_SET_PDEATHSIG, SIGTERM)``, to be sent
SIGTERM when its parent goes. The request is made by a few lines of Python
that then ``exec`` the real command (same pid, same argv from then on), not in
``preexec_fn``, which is unsafe in a process that has threads.

Two limits, both of the kernel's design: the signal comes when the *thread*
that started the child ends, so children must be started from a thread that
lives as long as the supervisor (the main thread in ``callstream up``); and it
reaches the child only, not the child's own children, which must end with it
(ours do: the simulator's generator stops when its pipe to the simulator
breaks). Elsewhere than on Linux the command runs unchanged, without backstop.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

# argv[1]: the pid of the parent that must be alive; argv[2:]: the command to exec.
_TRAMPOLINE = """
import ctypes, os, signal, sys
parent, argv = int(sys.argv[1]), sys.argv[2:]
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != parent:
    sys.exit(1)  # the parent died before the request took effect: nobody would end this child
try:
    os.execvp(argv[0], argv)
except OSError as exc:
    print(f"cannot run {argv[0]}: {exc.strerror}", file=sys.stderr)
    sys.exit(127)
"""


def tied_to_this_process(argv: Sequence[str]) -> list[str]:
    """``argv`` wrapped so that the child gets SIGTERM when this process (or thread) dies.

    ``-I -S``: the trampoline reads no environment or site packages, so it starts in
    milliseconds and behaves the same whatever the child's environment says.
    """
    if not sys.platform.startswith("linux"):
        return list(argv)
    return [sys.executable, "-I", "-S", "-c", _TRAMPOLINE, str(os.getpid()), *argv]
