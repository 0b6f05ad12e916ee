"""Lint and types as tests, so ``make test`` (and CI) runs them: ruff over the Python code,
mypy over the pure domain core, clippy over the compiled core, and every ``# noqa`` says why."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    result = _run(str(BIN / "ruff"), "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_the_domain_core_type_checks() -> None:
    result = _run(str(BIN / "mypy"), "--no-incremental")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_clippy_finds_nothing_in_the_compiled_core() -> None:
    cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
    assert Path(cargo).exists(), "cargo is needed to build the compiled core (make setup)"
    env = {**os.environ, "CARGO_TARGET_DIR": str(ROOT / "native" / "target" / "clippy")}
    result = subprocess.run([cargo, "clippy", "--release", "--quiet", "--", "-D", "warnings"],
                            cwd=ROOT / "native", capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-4000:]


def test_every_noqa_gives_its_reason() -> None:
    bare = []
    for top in ("callstream", "streams", "warehouse", "dashboards", "bench", "tests", "scripts"):
        for path in (ROOT / top).rglob("*.py"):
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                match = re.search(r"#\s*noqa(?::\s*[A-Z0-9, ]+)?(.*)$", line)
                if match and not re.search(r"[a-z]{3}", match.group(1)):
                    bare.append(f"{path.relative_to(ROOT)}:{lineno}")
    assert bare == []
