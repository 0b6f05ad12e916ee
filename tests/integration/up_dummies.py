"""``callstream up`` supervising two small real processes instead of Kafka's, for the signal tests.

Run as ``python -m tests.integration.up_dummies LOGS [stubborn]``. Everything
that decides whether ``up`` leaves a process behind is the real code: the
command's signal handling and progress lines, the Pipeline's stop, the
Supervisor. Only what the children are changes: no broker, no topics, and two
children ("first", "second") that each start a grandchild in their process
group, write a marker file once running, and sleep. With ``stubborn`` the
second child and its grandchild ignore SIGTERM (only SIGKILL ends them) and
get a 60 s grace period, so that a test can see a second signal cut it short.
The real children are covered end to end by ``test_up.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from callstream import cli, pipeline
from callstream.supervisor import ChildSpec

CHILD = """
import os, signal, subprocess, sys, time
if sys.argv[2] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import signal, sys, time\\n"
                  "if sys.argv[1] == 'stubborn': signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
                  "time.sleep(600)", sys.argv[2]])
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(600)
"""


def dummy_children(logs: Path, stubborn: bool) -> list[ChildSpec]:
    """Two sleeping children, each with a grandchild; the second one stubborn if asked."""
    specs = []
    for name, mode in (("first", "polite"), ("second", "stubborn" if stubborn else "polite")):
        marker = logs / f"{name}.ready"
        specs.append(ChildSpec(name, [sys.executable, "-c", CHILD, str(marker), mode],
                               ready=lambda _pid, marker=marker: marker.exists(), ready_timeout_s=30,
                               stop_timeout_s=60 if mode == "stubborn" else 5))
    return specs


def main(argv: list[str]) -> int:
    logs = Path(argv[0])
    stubborn = argv[1:] == ["stubborn"]
    pipeline.Pipeline.children = lambda self: dummy_children(logs, stubborn)
    pipeline.Pipeline._broker = lambda self: None
    pipeline.Pipeline._topics = lambda self: None
    return cli.main(["up", "--no-simulate", "--logs", str(logs)])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
