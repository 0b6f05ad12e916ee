"""The worker's agents and timer: thin wiring around the pure core.

- ``assemble_cdrs``: call-events (+ sweep commands) -> cdrs, alerts, DLQ, signals;
- ``flag_outages``: portal signals -> ``controller_outage`` alerts;
- ``sweep_calls``: a timer that asks calls' partitions to expire them, check their
  recording, archive them — or, over ``CALLSTREAM_MAX_HOT_CALLS``, evict the quietest;
- ``watch_for_stalls``: a timer that makes a worker stuck with waiting events rejoin its group.
"""

from __future__ import annotations

import logging
import os
import time

import orjson

from streams.app import Worker, streams_running
from streams.assemble import CallBatches
from streams.call_store import CallStore, Schedule
from streams.faust_fence import watchdog
from streams.flag_outages import OutageBatches
from streams.native import native_summarize

log = logging.getLogger("callstream.worker")

# An agent's batch: at most this many deliveries (each the records of one
# partition from one fetch, see streams/faust_fence/transport.py), or what came within
# BATCH_WITHIN_S. A portal's outage state is stored whole once per batch, so
# flag_outages batches by time alone: with small batches, storing the states
# of busy portals took most of the worker's CPU and delayed CDRs by seconds.
BATCH_MAX = 32
OUTAGE_BATCH_MAX = 1024
BATCH_WITHIN_S = 0.1
OUTAGE_BATCH_WITHIN_S = 1.0
# Calls asked again per sweep whose earlier command is not done yet (Schedule.due): first
# asks are never held back; re-asks are for commands a rebalance lost.
SWEEP_RETRIES = 500


def sweep_interval(worker: Worker) -> float:
    """How often the sweep runs: often enough for short test timeouts, at most every 5 s."""
    settings = worker.settings
    return max(0.2, min(5.0, settings.incomplete_after / 4, settings.forget_after / 4,
                        settings.recording_wait / 4))


def register(worker: Worker) -> CallBatches:
    """Attach the agents and the timer to the worker's Faust app."""
    app = worker.app
    schedule = Schedule(worker.settings.incomplete_after, worker.settings.forget_after,
                        recording_wait=worker.settings.recording_wait)
    store = CallStore(worker.calls_by_id, worker.archived_calls_by_id, schedule,
                      native_summarize(worker.native))
    batches = CallBatches(worker, store)

    @app.agent(worker.events, name="assemble_cdrs")
    async def assemble_cdrs(stream):
        async for batch in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            try:
                await batches.process(batch)
            except Exception:  # any failure: the worker dies, logged, rather than skip a batch
                _die("assemble_cdrs")

    outages = OutageBatches(worker)

    @app.agent(worker.signals, name="flag_outages")
    async def flag_outages(stream):
        async for batch in stream.take_events(OUTAGE_BATCH_MAX, within=OUTAGE_BATCH_WITHIN_S):
            try:
                await outages.process(batch)
            except Exception:  # any failure: the worker dies, logged, rather than skip a batch
                _die("flag_outages")

    watched: dict[str, frozenset[int]] = {"partitions": frozenset()}

    @app.timer(sweep_interval(worker), name="sweep_calls")
    async def sweep_calls():
        if not streams_running(app):
            return  # the hot table may be half recovered: rebuild the schedule after
        events_topic = worker.settings.topic_events
        actives = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == events_topic}
        if frozenset(actives) != watched["partitions"]:
            standbys = {tp.partition for tp in app.assignor.assigned_standbys()}
            kept, purged = store.purge_local(actives | standbys)
            schedule.rebuild(kept, actives)
            watched["partitions"] = frozenset(actives)
            log.info("sweep: partitions %s, %d calls in memory, %d stale copies dropped",
                     sorted(actives), len(schedule), purged)
        now = time.time()
        due_now = schedule.due(now, max_retries=SWEEP_RETRIES)
        for due in due_now + schedule.evictions(worker.settings.max_hot_calls, now):
            worker.commands.send_soon(
                key=due.call_id.encode(), partition=due.partition,
                value=orjson.dumps({"kind": due.kind, "call_id": due.call_id,
                                    "touched_at": due.touched_at}))

    clock = watchdog.StallClock()

    @app.timer(5.0, name="watch_for_stalls")
    async def watch_for_stalls():
        await watchdog.check(app, clock, lambda: batches.counts["events"], worker.settings.topic_events,
                             busy=lambda: batches.busy)

    return batches


def _die(agent: str) -> None:
    # Faust's take_events acknowledges a batch even when the agent raises, and
    # a restarted agent would go on after it: the batch would be lost. Exit at
    # once instead; the restarted process re-reads from the committed offsets.
    log.critical("%s failed; exiting so that the batch is processed again", agent, exc_info=True)
    logging.shutdown()
    os._exit(70)
