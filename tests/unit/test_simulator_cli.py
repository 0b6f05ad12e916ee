"""``callstream simulate`` flag errors: one line, exit 2, before any Kafka connection."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def _simulate(*args: str) -> subprocess.CompletedProcess:
    # An unreachable broker: a flag error must be reported before any connection is tried.
    env_args = ["--bootstrap", "127.0.0.1:1"]
    return subprocess.run([sys.executable, "-m", "callstream.cli", "simulate", *env_args, *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, message", [
    (("--duplicates", "1.5"), "--duplicates: must be between 0 and 1"),
    (("--outage-rate", "x"), "--outage-rate: not a number"),
    (("--calls", "-1"), "--calls: must be >= 0"),
    (("--portals", "0"), "--portals: must be >= 1"),
    (("--rate", "-2"), "--rate: must be >= 0"),
    (("--compression", "brotli"), "--compression: invalid choice"),
    (("--start", "yesterday"), "--start: not an RFC 3339 UTC time"),
    (("--start", "2026-11-25T10:00:00+03:00"), "--start: not an RFC 3339 UTC time"),
    (("--truth", "/nonexistent-dir/truth.jsonl"), "--truth: cannot write"),
])
def test_bad_flags_are_one_line_and_exit_2(args, message):
    done = _simulate(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith("callstream simulate: error:") and message in lines[0], lines[0]


def test_help_documents_every_knob_and_fault():
    done = subprocess.run([sys.executable, "-m", "callstream.cli", "simulate", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for flag in ("--calls", "--rate", "--seed", "--start", "--portals", "--truth", "--duplicates",
                 "--shuffle", "--late-recordings", "--malformed", "--outage-rate", "--stale-key",
                 "--license-errors", "--dev-copy", "--extranet", "--recording", "--compression",
                 "--bootstrap", "--topic-events"):
        assert flag in done.stdout, flag

