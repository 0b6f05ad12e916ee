"""Partitions replayed by several processes at once (``CALLSTREAM_REBUILD_WORKERS``).

Each partition job (replay_partition.py) runs in a process of its own,
started with ``spawn`` (a fresh interpreter: nothing of the parent's DuckDB,
Kafka client or threads is inherited). A child asks the kernel to kill it
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
    messages = context.Queue()
    stop = context.Event()
    pending, running, done = list(jobs), {}, {}
    try:
        while pending or running:
            while pending and len(running) < workers:
                job = pending.pop(0)
                process = context.Process(target=_child, args=(job, messages, stop, os.getpid()),
                                          name=f"callstream-rebuild-p{job.partition}", daemon=True)
                process.start()
                running[job.partition] = process
            _drain(messages, progress, done, running)
            for partition, process in list(running.items()):
                if partition not in done and process.exitcode is not None:
                    _drain(messages, progress, done, running)  # its last words may still be queued
                    if partition not in done:
                        raise RuntimeError(f"the replay of partition {partition} died "
                                           f"(exit code {process.exitcode})")
            progress.check()
    except BaseException:
        stop.set()
        for process in running.values():
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
        if kind == "read":
            progress.update(payload)
        elif kind == "done":
            done[partition] = PartitionStats(**payload)
            running.pop(partition).join()
            progress.partition_done(partition, done[partition].messages)
        elif kind == "error":
            name, text = payload
            raise (LogError if name == "LogError" else RuntimeError)(
                text if name == "LogError" else f"replay of partition {partition} failed: {name}: {text}")
        try:
            item = messages.get_nowait()
        except queue_module.Empty:
            return


def _child(job: PartitionJob, messages, stop, parent: int) -> None:
    """One partition in a child process: it dies with the parent, stops when asked."""
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

    try:
        stats = replay_partition(job, lambda n: messages.put(("read", job.partition, n)), check)
    except KeyboardInterrupt:
        return
    except Exception as exc:  # reported to the parent, which stops the rebuild with it
        messages.put(("error", job.partition, (type(exc).__name__, str(exc)[:2000])))
        return
    messages.put(("done", job.partition, vars(stats)))
