"""The worker's pure core alone, over the throughput benchmark's topic: its share of the budget.

    python bench/worker_core.py [--calls 180000] [--runs 3] [--core python|native|both]

Reads the pre-filled ``call-events`` topic of ``bench/worker_throughput.py``
into memory (the fetches as the broker returns them), then runs what the
worker does per batch of 32 fetches without Kafka or Faust: ``validate`` every
record, group the events by call, ``advance`` each call from its state (the
CDR versions and alerts as JSON bytes), and keep each new state's bytes in a
dict standing in for the hot table. ``--core python`` runs the reference
core of ``streams/domain``; ``--core native`` the compiled one of ``native/``
(``streams/native.py``) as the worker runs it, falling back to the Python core
for what it declines. The garbage collector is set as the worker sets it.
The rate is events per second of this loop alone, the median of ``--runs``:
an upper bound for the worker, whatever Kafka costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid

from aiokafka import AIOKafkaConsumer
from worker_common import RESULTS, base_settings, end_offsets, prefilled_events

from common import collector
from common.config import Settings
from common.kafka_clients import ISOLATION_LEVEL
from streams.app import alert_rules
from streams.domain.calls import advance
from streams.domain.dlq import encode_dlq
from streams.domain.events import Event, Rejection
from streams.domain.rating import load_tariffs
from streams.domain.state import state_from_bytes, state_to_bytes
from streams.domain.validation import validate
from streams.native import native_core, native_validate
from streams.worker import GC_THRESHOLDS

BATCH_FETCHES = 32  # streams.agents.BATCH_MAX: deliveries (fetches of one partition) per batch


async def _fetches(bootstrap: str, topic: str, total: int) -> list[tuple[int, list[tuple]]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"core-{uuid.uuid4().hex}",
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                isolation_level=ISOLATION_LEVEL)
    await consumer.start()
    try:
        fetches, seen = [], 0
        while seen < total:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                fetches.append((tp.partition, [(r.key, r.value, r.offset) for r in records]))
                seen += len(records)
        return fetches
    finally:
        await consumer.stop()


def run_core(fetches: list[tuple[int, list[tuple]]], tariffs, rules, topic: str, core: str) -> dict:
    """One pass of the worker's per-batch steps (``streams/assemble.py``) over every fetch.

    ``core`` "native": the compiled core first, the Python core for what it
    declines; "python": the Python core only. Returns counts and seconds.
    """
    native = native_core(Settings.from_env(native="on"), tariffs, rules) if core == "native" else None
    fast = native_validate() if native is not None else None
    hot: dict[str, bytes] = {}
    counts = {"events": 0, "rejected": 0, "cdrs": 0, "alerts": 0, "python_steps": 0}
    started = time.perf_counter()
    for at in range(0, len(fetches), BATCH_FETCHES):
        now = time.time()
        pending: dict[str, list] = {}
        for partition, records in fetches[at:at + BATCH_FETCHES]:
            counts["events"] += len(records)
            for key, value, offset in records:
                event = fast(value, key) if fast is not None else None
                taken = event is not None
                if not taken:
                    event = validate(value, key)
                    if isinstance(event, Rejection):
                        counts["rejected"] += 1
                        encode_dlq(event, topic, partition, offset, value)
                        continue
                item = pending.get(event.call_id)
                if item is None:
                    item = pending[event.call_id] = [hot.get(event.call_id), [], partition, True]
                item[1].append(event)
                item[3] = item[3] and taken
        for call_id, (blob, events, partition, taken) in pending.items():
            step = native.advance(blob, events, now, partition) if native is not None and taken else None
            if step is not None:
                blob, cdrs, alerts = step.state, step.cdrs, step.alerts
            else:
                counts["python_steps"] += 1
                events = [e if type(e) is Event else validate(e.value, e.key) for e in events]
                state, outputs = advance(None if blob is None else state_from_bytes(blob), events,
                                         tariffs, rules, now, partition)
                blob = None if state is None else state_to_bytes(state)
                cdrs, alerts = outputs.cdrs, outputs.alerts
            counts["cdrs"] += len(cdrs)
            counts["alerts"] += len(alerts)
            if blob is not None:
                hot[call_id] = blob
    return {**counts, "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=180_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--core", choices=("python", "native", "both"), default="both")
    args = parser.parse_args()
    settings = base_settings()
    topic = prefilled_events(settings, args.calls, args.seed)
    total = sum(end_offsets(settings, topic).values())
    fetches = asyncio.run(_fetches(settings.bootstrap, topic, total))
    tariffs, rules = load_tariffs(settings.tariffs_path), alert_rules(settings)
    collector.quiet(*GC_THRESHOLDS)
    cores = ("python", "native") if args.core == "both" else (args.core,)
    result = {"topic": topic, "events": total, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for core in cores:
        runs = []
        for run in range(args.runs):
            runs.append(run_core(fetches, tariffs, rules, topic, core))
            rate = runs[-1]["events"] / runs[-1]["seconds"]
            print(f"{core} run {run + 1}: {rate:,.0f} events/s ({runs[-1]['seconds']:.1f} s; "
                  f"{runs[-1]['cdrs']:,} CDRs, {runs[-1]['alerts']:,} alerts)", flush=True)
        median = statistics.median(r["events"] / r["seconds"] for r in runs)
        result[core] = {"runs": runs, "events_per_s_median": median, "us_per_event": 1e6 / median}
        print(f"{core} core median: {median:,.0f} events/s ({1e6 / median:.2f} us per event)", flush=True)
    if len(cores) == 2:
        ratio = result["native"]["events_per_s_median"] / result["python"]["events_per_s_median"]
        result["native_over_python"] = ratio
        print(f"compiled core / Python core: {ratio:.1f}x")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "worker_core.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
