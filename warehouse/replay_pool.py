"""Partitions replayed by several processes at once (``CALLSTREAM_REBUILD_WORKERS``).

``workers`` processes are started with ``spawn`` (a fresh interpreter:
nothing of the parent's DuckDB, Kafka client or threads is inherited); each
takes the next partition job (replay_partition.py) from a queue until none is
left, so the interpreter's start and its imports (pyarrow, pandas, DuckDB:
~1 s of CPU) are paid once per process, not once per partition. A child asks the kernel to kill it
when the rebuild dies (``PR_SET_PDEATHSIG``), so ``kill -9`` of the rebuild
leaves no replay running; Ctrl-C reaches the parent only (children ignore
SIGINT), which asks every child to stop at its next batch. Children report
the messages they read (the progress bar) and their counts through a queue.
With one worker the jobs run one after the other in the calling process.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import signal
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
        return done
    context = multiprocessing.get_context("spawn")
    messages, tasks = context.Queue(), context.Queue()
    stop = context.Event()
    for job in jobs:
        tasks.put(job)
    processes = []
    for n in range(min(workers, len(jobs))):
        tasks.put(None)  # one end mark per process
        processes.append(context.Process(target=_child, args=(tasks, messages, stop, os.getpid()),
                                         name=f"callstream-rebuild-{n}", daemon=True))
    done: dict[int, PartitionStats] = {}
    running: dict[int, int] = {}  # partition -> the process replaying it
    try:
        for process in processes:
            process.start()
        while len(done) < len(jobs):
            _drain(messages, progress, done, running)
            for n, process in enumerate(processes):
                if process.exitcode is not None and n in running.values():
                    _drain(messages, progress, done, running)  # its last words may still be queued
                    dead = [p for p, owner in running.items() if owner == n]
                    if dead:
                        raise RuntimeError(f"the replay of partition {dead[0]} died "
                                           f"(exit code {process.exitcode})")
            if len(done) < len(jobs) and all(p.exitcode is not None for p in processes):
                _drain(messages, progress, done, running)
                if len(done) < len(jobs):
                    raise RuntimeError("the replay processes ended before every partition was replayed")
            progress.check()
        for process in processes:
            process.join()
    except BaseException:
        stop.set()
        for process in processes:
            if process.pid is None:
                continue
            process.join(30)
            if process.is_alive():
                process.kill()
        raise
    return done


def _drain(messages, progress: Any, done: dict, running: dict) -> None:
    try:
        item = messages.get(timeout=_POLL_S)
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
            return
        except Exception as exc:  # reported to the parent, which stops the rebuild with it
            messages.put(("error", job.partition, (type(exc).__name__, str(exc)[:2000])))
            return
        messages.put(("done", job.partition, vars(stats)))
