"""``callstream worker --tariffs`` with a bad file: one line naming the file and line, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.integration.worker_harness import settings_env, worker_settings

pytestmark = pytest.mark.integration
__all__ = ["worker_settings"]  # the fixture, imported for pytest

HEADER = "line,direction,prefix,region,rate_per_min,connect_fee,increment_s,min_s,currency,valid_from\n"
GOOD = "operator,outbound,7,Russia,1.20,0.00,1,0,RUB,2020-01-01T00:00:00Z\n"


@pytest.mark.parametrize("text, line, words", [
    (HEADER + GOOD + "operator,outbound,7495,Moscow,1.2x,0.00,1,0,RUB,2020-01-01T00:00:00Z\n",
     3, "rate_per_min"),
    (HEADER + GOOD + GOOD, 3, "duplicate"),
    ("line,direction,prefix\n" + GOOD, 1, "header"),
    (HEADER + GOOD + "operator,outbound,7,Russia,1.20,0.00,1,0,RUB\n", 3, "columns"),
])
def test_a_bad_tariff_file_stops_the_worker_with_one_line(worker_settings, tmp_path, text, line, words):
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    done = _worker(worker_settings, "--tariffs", str(bad))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"{bad}:{line}:" in lines[0] and words in lines[0], lines[0]


def test_a_missing_tariff_file_is_one_line_too(worker_settings, tmp_path):
    missing = tmp_path / "nowhere.csv"
    done = _worker(worker_settings, env_tariffs=str(missing))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and "Traceback" not in done.stderr, done.stderr


def _worker(settings, *args: str, env_tariffs: str | None = None) -> subprocess.CompletedProcess:
    extra = {"CALLSTREAM_TARIFFS": env_tariffs} if env_tariffs else {}
    return subprocess.run([sys.executable, "-m", "callstream.cli", "worker", *args],
                          env=settings_env(settings, **extra), capture_output=True, text=True,
                          timeout=120)
