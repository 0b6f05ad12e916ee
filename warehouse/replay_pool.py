"""Partitions replayed by several processes at once (``CALLSTREAM_REBUILD_WORKERS``).

With ``workers`` = N, the calling process and N - 1 children started with
``spawn`` (a fresh interpreter: nothing of the parent's DuckDB, Kafka client
or threads is inherited) each take the next partition job
(replay_partition.py) from a queue until none is left. So an interpreter's
start and imports (pyarrow, pandas, DuckDB: ~1 s of CPU and ~180 MiB of RSS)
are paid once per process, not once per partition, and not at all for the
caller, whose imports are paid already. After each partition a process gives
its freed memory back to the system (:func:`release_memory`). A child asks
the kernel to kill it when the rebuild dies (``PR_SET_PDEATHSIG``), so
``kill -9`` of the rebuild leaves no replay running; Ctrl-C reaches the parent
only (children ignore SIGINT), which stops at its next batch and asks every
child to stop at theirs. Children report the messages they read (the progress
bar) and their counts through a queue, read by the parent between its own
batches. With one worker the jobs run one after the other in the calling
process.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import signal
import time
from typing import Any

from warehouse.event_log import LogError
from warehouse.replay_partition import PartitionJob, PartitionStats, replay_partition

_POLL_S = 0.2


def run_jobs(jobs: list[PartitionJob], workers: int, progress: Any) -> dict[int, PartitionStats]:
    """Run ``jobs``; partition -> counts. Raises LogError or RuntimeError for a failed job,
    KeyboardInterrupt once ``progress.stop`` is set (every child stopped first)."""
    if workers <= 1 or len(jobs) <= 1:
        done = {}
        for job in jobs:
            done[job.partition] = replay_partition(job, progress.update, progress.check)
            progress.partition_done(job.partition, done[job.partition].messages)
            release_memory()
        return done
    context = multiprocessing.get_context("spawn")
    messages, tasks = context.Queue(), context.Queue()
    stop = context.Event()
    for job in jobs:
        tasks.put(job)
    consumers = min(workers, len(jobs))  # this process and consumers - 1 children
    for _ in range(consumers):
        tasks.put(None)  # one end mark per consumer
    processes = [context.Process(target=_child, args=(tasks, messages, stop, os.getpid()),
                                 name=f"callstream-rebuild-{n}", daemon=True) for n in range(consumers - 1)]
    done: dict[int, PartitionStats] = {}
    running: dict[int, int] = {}  # partition -> the child replaying it

    def watch(timeout: float) -> None:
        """Take the children's reports; raise when one failed or died with work taken."""
        _drain(messages, progress, done, running, timeout)
        for n, process in enumerate(processes):
            if process.exitcode is not None and n in running.values():
                _drain(messages, progress, done, running, _POLL_S)  # its last words may still be queued
                dead = [p for p, owner in running.items() if owner == n]
                if dead:
                    raise RuntimeError(f"the replay of partition {dead[0]} died (exit code {process.exitcode})")

    def report(count: int) -> None:
        progress.update(count)
        watch(0.0)

    try:
        for process in processes:
            process.start()
        # This process replays too (its imports are paid already): one interpreter fewer,
        # ~180 MiB of RSS and ~1 s of CPU less than a child of its own.
        while (job := tasks.get()) is not None:
            done[job.partition] = replay_partition(job, report, progress.check)
            progress.partition_done(job.partition, done[job.partition].messages)
            release_memory()
        while len(done) < len(jobs):
            watch(_POLL_S)
            if len(done) < len(jobs) and all(p.exitcode is not None for p in processes):
                _drain(messages, progress, done, running, _POLL_S)
                if len(done) < len(jobs):
                    raise RuntimeError("the replay processes ended before every partition was replayed")
            progress.check()
        for process in processes:
            process.join()
    except BaseException:
        stop.set()
        # Jobs no process took stay queued: they must not hold this process at its exit.
        tasks.cancel_join_thread()
        messages.cancel_join_thread()
        deadline = time.monotonic() + 30
        for process in processes:
            if process.pid is None:
                continue
            while process.is_alive() and time.monotonic() < deadline:
                _discard(messages)  # a child blocked on a full pipe could not stop
                process.join(0.1)
            if process.is_alive():
                process.kill()
        raise
    return done


def _discard(messages) -> None:
    try:
        while True:
            messages.get_nowait()
    except (queue_module.Empty, OSError, ValueError):
        return


def release_memory() -> None:
    """Give the memory a finished partition used back to the system before the next one: a
    process replays several partitions, and freed pages kept by Arrow's allocator and by
    glibc's arenas would add up (the rebuild's peak RSS is bounded per process)."""
    import gc

    import pyarrow as pa

    from common import heap

    gc.collect()
    pa.default_memory_pool().release_unused()
    trim = heap.trimmer()  # None where there is no glibc
    if trim is not None:
        trim()


def _drain(messages, progress: Any, done: dict, running: dict, timeout: float) -> None:
    try:
        item = messages.get(timeout=timeout) if timeout > 0 else messages.get_nowait()
    except queue_module.Empty:
        return
    while True:
        kind, partition, payload = item
        if kind == "start":
            running[partition] = payload
        elif kind == "read":
            progress.update(payload)
        elif kind == "done":
            done[partition] = PartitionStats(**payload)
            running.pop(partition, None)
            progress.partition_done(partition, done[partition].messages)
        elif kind == "error":
            name, text = payload
            raise (LogError if name == "LogError" else RuntimeError)(
                text if name == "LogError" else f"replay of partition {partition} failed: {name}: {text}")
        try:
            item = messages.get_nowait()
        except queue_module.Empty:
            return


def _child(tasks, messages, stop, parent: int) -> None:
    """Partitions from ``tasks`` in a child process until the end mark: it dies with the
    parent, stops when asked."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        return  # the rebuild died before the request took effect
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def check() -> None:
        if stop.is_set():
            raise KeyboardInterrupt

    worker = int(multiprocessing.current_process().name.rsplit("-", 1)[1])
    while (job := tasks.get()) is not None:
        messages.put(("start", job.partition, worker))
        try:
            stats = replay_partition(job, lambda n, p=job.partition: messages.put(("read", p, n)), check)
        except KeyboardInterrupt:
            messages.cancel_join_thread()  # the parent may have stopped reading
            return
        except Exception as exc:  # reported to the parent, which stops the rebuild with it
            messages.put(("error", job.partition, (type(exc).__name__, str(exc)[:2000])))
            return
        messages.put(("done", job.partition, vars(stats)))
        release_memory()
