"""``callstream rebuild`` interrupted, killed and swapped under a reader (real broker, real files).

- Ctrl-C (SIGINT) or SIGTERM in the middle: exit 130, the unfinished generation
  deleted, the live warehouse byte for byte as it was;
- ``kill -9`` in the middle (some partitions replayed and checkpointed, some
  not): the unfinished generation is left behind, the next rebuild continues
  it (the partitions done are not replayed again) and its warehouse holds
  exactly the rows of an uninterrupted rebuild, every column, positions too;
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


def interrupt_midway(settings, live: Path, sig: int, written: str = "manifest.json") -> tuple[int, str]:
    """A swapping rebuild sent ``sig`` once its unfinished generation holds a file named
    ``written`` (a partition's first write, or its checkpoint): its exit code and stderr."""
    process = rebuild(settings)
    wait_for(lambda: any(next(d.rglob(written), None) for d in building(live)) or process.poll() is not None,
             f"the rebuild's first {written}", timeout=60, every=0.05)
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

    # One partition at a time, so that the kill finds some checkpointed and some not.
    code, _ = interrupt_midway(settings.replace(rebuild_workers=1), live, signal.SIGKILL, "done.json")
    assert code == -signal.SIGKILL and len(building(live)) == 1
    [left] = building(live)
    done = len(list(left.glob("replay/part-*/done.json")))
    assert 0 < done < settings.events_partitions

    err = finish(rebuild(settings))
    assert building(live) == [] and live.is_symlink(), err
    assert f"continued an interrupted rebuild: {done} of {settings.events_partitions} partitions" in err
    [before] = tmp_path.glob("warehouse.gen-before-*")
    assert {p.relative_to(before): b for p, b in
            ((p, p.read_bytes()) for p in before.rglob("*") if p.is_file())} == \
        {p.relative_to(live): b for p, b in snapshot.items()}
    for table in ("cdrs", "alerts", "events", "dlq", "rejects", "cdrs_daily"):
        assert _differences(before, live, table) == (0, 0), table
    first_generation = live.resolve()
    _swap_under_a_reader(settings, live)
    assert live.resolve() != first_generation and first_generation.is_dir()  # kept as previous
    assert not before.exists()  # generations older than the previous one are deleted


def _differences(a: Path, b: Path, table: str) -> tuple[int, int]:
    """(rows of A not in B, rows of B not in A), every column."""
    from tests.integration.sink_data import table_arrow
    from warehouse import duck

    con = duck.connect()
    try:
        for name, root in (("a", a), ("b", b)):
            con.register(name, table_arrow(root, table))
        return tuple(con.execute(f"SELECT count(*) FROM (SELECT * FROM {x} EXCEPT ALL SELECT * FROM {y})")
                     .fetchone()[0] for x, y in (("a", "b"), ("b", "a")))
    finally:
        con.close()


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
