"""``callstream rebuild`` interrupted, killed and swapped under a reader (real broker, real files).

- Ctrl-C (SIGINT) or SIGTERM in the middle: exit 130, the unfinished generation
  deleted, the live warehouse byte for byte as it was;
- ``kill -9`` in the middle: the unfinished generation is left behind and the
  next rebuild deletes it;
- the first swap turns a plain warehouse directory into a link to a generation
  and keeps the old directory as the previous generation; a later swap, with a
  reader querying all along, is never seen half done.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from streams.simulator import Faults, generate_all
from tests.integration.worker_harness import produce, settings_env, wait_for
from warehouse.reader import Reader

pytestmark = pytest.mark.integration

START_US = 1_795_503_600_000_000


def rebuild(settings, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "callstream.cli", "rebuild", "--no-progress", *args],
                            env=settings_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(process: subprocess.Popen) -> str:
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return err


def building(live: Path) -> list[Path]:
    return sorted(live.parent.glob(f".{live.name}.rebuild-*"))


def interrupt_midway(settings, live: Path, sig: int) -> tuple[int, str]:
    """A swapping rebuild sent ``sig`` once its unfinished generation holds written files:
    its exit code and stderr."""
    process = rebuild(settings)
    wait_for(lambda: any((d / "manifest.json").exists() for d in building(live)) or process.poll() is not None,
             "the rebuild's first write", timeout=60, every=0.05)
    assert process.poll() is None, "the rebuild finished before it could be interrupted"
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    return process.returncode, err


def test_interrupted_killed_and_swapped_rebuilds(pipeline_settings, tmp_path):
    settings = pipeline_settings
    live = Path(settings.warehouse)
    messages, _ = generate_all(7, 12_000, 8, START_US, Faults(duplicates=0.05, malformed=0.01))
    produce(settings, [(m.key, m.value) for m in messages])
    finish(rebuild(settings, "--to", str(live)))  # the live warehouse: a plain directory
    snapshot = {p: p.read_bytes() for p in live.rglob("*") if p.is_file()}

    for sig in (signal.SIGINT, signal.SIGTERM):
        code, err = interrupt_midway(settings, live, sig)
        assert code == 130 and err.strip() == "callstream rebuild: interrupted", err
        assert building(live) == [] and not live.is_symlink()
        assert {p: p.read_bytes() for p in live.rglob("*") if p.is_file()} == snapshot

    code, _ = interrupt_midway(settings, live, signal.SIGKILL)
    assert code == -signal.SIGKILL and len(building(live)) == 1

    err = finish(rebuild(settings))
    assert building(live) == [] and live.is_symlink(), err
    [before] = tmp_path.glob("warehouse.gen-before-*")
    assert {p.relative_to(before): b for p, b in
            ((p, p.read_bytes()) for p in before.rglob("*") if p.is_file())} == \
        {p.relative_to(live): b for p, b in snapshot.items()}
    first_generation = live.resolve()
    _swap_under_a_reader(settings, live)
    assert live.resolve() != first_generation and first_generation.is_dir()  # kept as previous
    assert not before.exists()  # generations older than the previous one are deleted


def _swap_under_a_reader(settings, live: Path) -> None:
    """A reader querying in a loop while a rebuild swaps: every answer is the whole warehouse."""
    with Reader(live) as reader:
        with reader.cursor() as con:
            expected = con.execute("SELECT count(*), sum(cost), count(DISTINCT portal_id) FROM cdrs").fetchone()
        answers, errors, done = [], [], threading.Event()

        def query() -> None:
            while not done.is_set():
                try:
                    with reader.cursor() as cursor:
                        answers.append(cursor.execute(
                            "SELECT count(*), sum(cost), count(DISTINCT portal_id) FROM cdrs").fetchone())
                except Exception as exc:  # noqa: BLE001 - collected and asserted below
                    errors.append(repr(exc))
                time.sleep(0.01)

        thread = threading.Thread(target=query)
        thread.start()
        try:
            finish(rebuild(settings))
            seen = len(answers)
            wait_for(lambda: len(answers) > seen + 10, "queries after the swap")
        finally:
            done.set()
            thread.join()
    assert errors == [] and len(answers) > 20
    assert set(answers) == {expected}
