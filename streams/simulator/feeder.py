"""Generation in a child process, so that making events and producing them use both cores.

Making an event costs about as much CPU as kafka-python spends sending it, so
with ``--rate 0`` the engine runs in a child process that ships batches of
``(key, value)`` pairs through a pipe; the parent only sends. The child owns
the truth file. The pipe's buffer is the backpressure. SIGINT is ignored in
the child: the parent decides when to stop and tells it through an Event,
then the child sends what it has generated and its final counts.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from streams.simulator.engine import Simulator, Stats
from streams.simulator.knobs import Faults, Knobs
from streams.simulator.truth import truth_file

BATCH = 2000  # messages per pipe transfer: large enough that pickling overhead vanishes


@dataclass(frozen=True)
class FeedSpec:
    """Everything the child needs to rebuild the simulation (picklable)."""

    seed: str
    portals: int
    start_us: int
    calls: int
    knobs: Knobs
    faults: Faults
    truth_path: str | None


def _child(conn: Any, spec: FeedSpec, stop: Any) -> None:
    """Child process body: play calls, ship messages in batches, then the final counts."""
    from streams.simulator.pacing import fast

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with truth_file(spec.truth_path) as on_truth:
            sim = Simulator(spec.seed, spec.portals, spec.start_us, spec.faults, spec.knobs, on_truth)
            batch: list[tuple[bytes, bytes]] = []
            for message in fast(sim, spec.calls, stop.is_set):
                batch.append((message.key, message.value))
                if len(batch) >= BATCH:
                    conn.send(("batch", (batch, sim.stats.calls)))
                    batch = []
            conn.send(("batch", (batch, sim.stats.calls)))
        conn.send(("done", sim.stats))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the parent is gone: nobody is left to tell
    except Exception as exc:  # the parent turns this into a one-line error
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


class ChildFeed:
    """The parent's end: iterate batches of ``(key, value)``; ``calls`` so far; ``stats`` at the end."""

    def __init__(self, spec: FeedSpec) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe(duplex=False)
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_child, args=(child_conn, spec, self._stop),
                                 name="callstream-simulate-feed", daemon=True)
        self._proc.start()
        child_conn.close()
        self.stats = Stats()
        self.calls = 0
        self.error: str | None = None

    def stop(self) -> None:
        """Ask the child to stop making calls (it still sends what it made)."""
        self._stop.set()

    def __iter__(self) -> Iterator[list[tuple[bytes, bytes]]]:
        while True:
            try:
                kind, payload = self._conn.recv()
            except EOFError:
                self.error = self.error or "the generator process died"
                return
            if kind == "batch":
                batch, self.calls = payload
                yield batch
            elif kind == "done":
                self.stats = payload
                return
            else:
                self.error = payload
                return

    def close(self, kill: bool = False) -> None:
        """Reap the child; ``kill`` it first when the parent gives up on it."""
        if kill:
            self._proc.kill()
        self._proc.join(timeout=10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._conn.close()
