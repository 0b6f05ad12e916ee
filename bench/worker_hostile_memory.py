"""Worker memory under hostile volume: one call of 20,000 events, one portal of 100,000 verdicts.

    python bench/worker_hostile_memory.py [--runs 3] [--call-events 20000] [--portal-calls 100000]
                                          [--scenarios hostile,spread,plain] [--control-portals 100]

Issue 12 asks that memory stay flat (goal: peak RSS under 1 GiB and under 2x
the worker's idle RSS). Each run starts `callstream worker` on empty topics of
its own (a fresh prefix for topics, group and state dir; all deleted at the
end) and goes through three phases:

- idle: once the group is stable, the RSS settles; idle RSS = the median of
  its last 10 s;
- hot call: one call of --call-events distinct events, produced at once:
  call.started, call.ended, then call.offered (distinct attempts) and
  recording.stored (distinct URLs) in turn. The worker folds the first
  CALLSTREAM_MAX_CALL_EVENTS (10,000) and refuses the rest as call_too_large;
- busy portal: --portal-calls calls of one portal within 5 h of event time
  (a portal's outage state keeps 6 h), each call.started, a verdict
  (controller.bypassed or controller.replied) and call.ended; runs of 10
  bypassed and 10 checked calls, so an outage opens and resolves every 20.

Two controls, each in a worker of its own, tell what the busy portal's
figure is made of: "spread", the same calls over --control-portals portals
(1,000 verdicts and 50 outages each by default: the same 5,000 outages, no
portal beyond its newest 4,096 verdicts), and "plain", the same calls with no
verdict at all (what 100,000 calls cost in the worker's hot table, which
keeps a settled call for CALLSTREAM_FORGET_AFTER, 1 h).

Per phase: the peak RSS while the worker takes it in (VmHWM, reset as the
phase starts), the RSS once everything is committed and the outputs have
been quiet (median over 10 s), both against idle. Then every output record
is read back: DLQ records by reason, the largest record of cdrs, alerts and
the DLQ (the contract's limit: 1 MiB), and of the worker's internal topics.
Figures are medians over --runs runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError
from worker_common import (
    MIB,
    RESULTS,
    Lags,
    base_settings,
    delete_topics,
    exit_on_sigterm,
    peak_rss_mib,
    read_topic,
    reset_peak_rss,
    rss_mib,
    start_worker,
)

from common.kafka_clients import producer_options
from streams.app import changelog_topic_names, internal_topic_names
from streams.domain.timefmt import format_ts_ms

S = 1_000_000  # microseconds per second
HOT_CALL, BUSY_PORTAL = "hot-call", "busy-portal"


def event(call_id: str, type_: str, ts_us: int, data: dict, portal: str) -> tuple[bytes, bytes]:
    """One contract-v1 event as a (key, value) message."""
    source = "controller" if type_ == "controller.replied" else "voice"
    doc = {"event_id": uuid.uuid4().hex, "v": 1, "type": type_, "call_id": call_id, "portal_id": portal,
           "source": source, "node": "ctl-1" if source == "controller" else "vs-1",
           "ts": format_ts_ms(ts_us), "data": data}
    return call_id.encode(), orjson.dumps(doc)


def started(call_id: str, ts_us: int, portal: str, record: bool = False) -> tuple[bytes, bytes]:
    return event(call_id, "call.started", ts_us,
                 {"direction": "outbound", "line": "operator", "from": "user:u1", "to": "+74951234567",
                  "line_number": None, "shown_number": None, "user_id": "u1", "extranet": False,
                  "record": record}, portal)


def ended(call_id: str, ts_us: int, portal: str) -> tuple[bytes, bytes]:
    return event(call_id, "call.ended", ts_us, {"cause": "normal", "by": "caller"}, portal)


def hot_call(events: int, now_us: int) -> list[tuple[bytes, bytes]]:
    """One call of ``events`` distinct events: started, ended, then offers and recordings in turn."""
    t0 = now_us - 2 * 3600 * S
    out = [started(HOT_CALL, t0, "hot-portal", record=True), ended(HOT_CALL, t0 + 60 * S, "hot-portal")]
    for i in range(events - 2):
        ts = t0 + 61 * S + i * 1000
        if i % 2:
            out.append(event(HOT_CALL, "recording.stored", ts,
                             {"url": f"https://rec.example.net/{HOT_CALL}/{i}.mp3", "bytes": 48_000,
                              "seconds": 3.0, "format": "mp3"}, "hot-portal"))
        else:
            out.append(event(HOT_CALL, "call.offered", ts,
                             {"user_id": "u1", "attempt": i + 1, "rule": "queue", "rings": 1}, "hot-portal"))
    return out


def verdict_calls(calls: int, now_us: int, portals: int = 1,
                  verdicts: bool = True) -> list[tuple[bytes, bytes]]:
    """``calls`` calls within 5 h, each with a verdict: 10 bypassed, 10 checked, ...

    One portal (the busy portal), or ``portals`` of them in turn, each portal's own
    calls again in runs of 10 and 10; or no verdicts at all (the controls)."""
    t0, step = now_us - int(5.5 * 3600 * S), 5 * 3600 * S // calls
    out = []
    for i in range(calls):
        call_id, ts = f"v-{i}", t0 + i * step
        portal = BUSY_PORTAL if portals == 1 else f"p-{i % portals}"
        out.append(started(call_id, ts, portal))
        if not verdicts:
            pass
        elif (i // (10 * portals)) % 2 == 0:
            out.append(event(call_id, "controller.bypassed", ts + S // 10,
                             {"reason": "timeout", "key_saved_at": format_ts_ms(ts - 3600 * S)}, portal))
        else:
            out.append(event(call_id, "controller.replied", ts + S // 10,
                             {"result": "ok", "config_id": "cfg-1"}, portal))
        out.append(ended(call_id, ts + 20 * S, portal))
    return out


def produce(settings, messages: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(**producer_options(settings), linger_ms=20, batch_size=512 * 1024)
    try:
        for key, value in messages:
            producer.send(settings.topic_events, key=key, value=value)
        producer.flush(300)
    finally:
        producer.close(10)


def settled_rss(pid: int, window_s: float = 10, limit_s: float = 90) -> float:
    """Median RSS over the last ``window_s`` once it moved less than 1 MiB in that window."""
    samples: list[float] = []
    began = time.monotonic()
    per_window = int(window_s / 0.5)
    while True:
        samples.append(rss_mib(pid))
        recent = samples[-per_window:]
        if len(samples) >= per_window and (max(recent) - min(recent) < 1
                                            or time.monotonic() - began > limit_s):
            return statistics.median(recent)
        time.sleep(0.5)


def wait_done(run, lags: Lags, quiet_s: float = 5, timeout_s: float = 1800) -> float:
    """Seconds until the group committed events and commands and the outputs were quiet ``quiet_s``."""
    s = run.settings
    commands = internal_topic_names(s)[0]
    began = time.monotonic()
    last, since = None, began
    while True:
        if run.process.poll() is not None:
            raise RuntimeError(f"worker exited {run.process.returncode}; see {run.log}")
        try:
            outputs = sum(lags.end(t) for t in (s.topic_cdrs, s.topic_alerts, s.topic_dlq))
            behind = lags.lag(s.worker_group, s.topic_events) + lags.lag(s.worker_group, commands)
        except KafkaError:
            behind = None  # a rebalance or a moving coordinator: look again
        now = time.monotonic()
        if outputs != last:
            last, since = outputs, now
        if behind == 0 and now - since >= quiet_s:
            return now - began
        if now - began > timeout_s:
            raise TimeoutError(f"not done after {timeout_s} s (lag {behind}); see {run.log}")
        time.sleep(0.5)


def phase(run, lags: Lags, messages: list, idle: float) -> dict:
    """Feed ``messages``; peak RSS while they are taken in, RSS once done and quiet."""
    pid = run.process.pid
    reset_peak_rss(pid)
    began = time.monotonic()
    produce(run.settings, messages)
    wait_done(run, lags)
    took = time.monotonic() - began
    peak = peak_rss_mib(pid)
    after = settled_rss(pid)
    return {"messages": len(messages), "seconds": round(took, 1), "peak_rss_mib": round(peak, 1),
            "after_rss_mib": round(after, 1), "peak_over_idle": round(peak / idle, 2)}


def outputs(settings) -> dict:
    """What the worker wrote: DLQ reasons, the hot call's CDR, the portal's alerts, record sizes."""
    records = {t: read_topic(settings, t) for t in (settings.topic_cdrs, settings.topic_alerts,
                                                     settings.topic_dlq)}
    cdrs, alerts, dlq = (records[t] for t in (settings.topic_cdrs, settings.topic_alerts, settings.topic_dlq))
    hot = [orjson.loads(r.value) for r in cdrs if r.key == HOT_CALL.encode()]
    hot_cdr = max(hot, key=lambda c: c["version"]) if hot else {}
    latest = {}  # alert_id -> "type:state" of its last message (a portal's alerts share a partition)
    for record in alerts:
        doc = orjson.loads(record.value)
        latest[doc["alert_id"]] = f"{doc['type']}:{doc['detail'].get('state', 'open')}"
    internal = [*internal_topic_names(settings), *changelog_topic_names(settings)]
    largest_internal = max((len(r.value or b"") for t in internal for r in read_topic(settings, t)),
                           default=0)
    return {
        "dlq_by_reason": dict(Counter(orjson.loads(r.value)["reason"] for r in dlq)),
        "hot_call_cdr_versions": len(hot), "hot_call_cdr_events": hot_cdr.get("events"),
        "hot_call_recording_urls": len(hot_cdr.get("recording_urls") or []),
        "portal_calls_with_cdr": len({r.key for r in cdrs if r.key.startswith(b"v-")}),
        "alert_messages": len(alerts), "alerts_by_latest_state": dict(Counter(latest.values())),
        "largest_record_bytes": {name: max((len(r.value) for r in recs), default=0)
                                 for name, recs in (("cdrs", cdrs), ("alerts", alerts), ("dlq", dlq))},
        "records_over_1mib": sum(len(r.value) > MIB for recs in records.values() for r in recs),
        "largest_internal_record_bytes": largest_internal,
    }


def one_run(settings, phases: dict[str, Callable[[int], list]]) -> dict:
    """A fresh worker: its idle RSS, then each phase's messages (made at its start) in turn."""
    run = start_worker(settings, None, "bench-hostile")
    lags = Lags(run.settings)
    try:
        deadline = time.monotonic() + 120
        while lags.stable_members(run.settings.worker_group) != 1:
            if run.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not join its group; see {run.log}")
            time.sleep(0.5)
        idle = settled_rss(run.process.pid)
        result = {"idle_rss_mib": round(idle, 1)}
        for name, make in phases.items():
            result[name] = phase(run, lags, make(int(time.time() * S)), idle)
        result["outputs"] = outputs(run.settings)
        return result
    finally:
        run.stop()
        lags.close()
        delete_topics(run.settings, run.prefix)
        shutil.rmtree(run.settings.state_dir, ignore_errors=True)


def medians(runs: list[dict]) -> dict:
    """The median of every phase's figures over the runs."""
    out = {"idle_rss_mib": statistics.median(r["idle_rss_mib"] for r in runs)}
    for name in (k for k, v in runs[0].items() if isinstance(v, dict) and "peak_rss_mib" in v):
        for key in ("peak_rss_mib", "after_rss_mib", "peak_over_idle", "seconds"):
            out[f"{name}_{key}"] = statistics.median(r[name][key] for r in runs)
    return out


def describe(label: str, r: dict) -> str:
    phases = "; ".join(f"{name} peak {v['peak_rss_mib']:,.0f} (after {v['after_rss_mib']:,.0f}, "
                       f"{v['peak_over_idle']:.2f}x idle)"
                       for name, v in r.items() if isinstance(v, dict) and "peak_rss_mib" in v)
    o = r["outputs"]
    return (f"{label}: idle {r['idle_rss_mib']:,.0f} MiB; {phases}; DLQ {o['dlq_by_reason']}; "
            f"largest output record {max(o['largest_record_bytes'].values()):,} B, "
            f"{o['records_over_1mib']} over 1 MiB")


def scenarios(args) -> dict[str, dict[str, Callable[[int], list]]]:
    """Each scenario's phases, in order, for one fresh worker."""
    return {
        "hostile": {"hot_call": lambda now: hot_call(args.call_events, now),
                    "busy_portal": lambda now: verdict_calls(args.portal_calls, now)},
        # The busy portal's calls spread over many portals: what one portal's verdicts add.
        "spread": {"spread_portals": lambda now: verdict_calls(args.portal_calls, now, args.control_portals)},
        # The same calls with no verdict at all: what the calls alone cost.
        "plain": {"no_verdicts": lambda now: verdict_calls(args.portal_calls, now, verdicts=False)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--call-events", type=int, default=20_000)
    parser.add_argument("--portal-calls", type=int, default=100_000)
    parser.add_argument("--control-portals", type=int, default=100,
                        help="portals of the spread control (default 100)")
    parser.add_argument("--scenarios", default="hostile,spread,plain",
                        help="comma-separated, from hostile (the measurement), spread and plain (controls)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    chosen = {name: phases for name, phases in scenarios(args).items() if name in args.scenarios.split(",")}
    exit_on_sigterm()
    settings = base_settings()
    load_before = [round(x, 2) for x in os.getloadavg()]
    runs: dict[str, list] = {name: [] for name in chosen}
    for index in range(args.runs):
        for name, phases in chosen.items():
            runs[name].append(one_run(settings, phases))
            print(describe(f"{name} {index + 1}", runs[name][-1]), flush=True)
    result = {"call_events": args.call_events, "portal_calls": args.portal_calls,
              "control_portals": args.control_portals, "max_call_events": settings.max_call_events,
              "median": {name: medians(r) for name, r in runs.items()}, "runs": runs,
              "load_before": load_before, "load_after": [round(x, 2) for x in os.getloadavg()],
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "worker_hostile_memory" + ("" if len(chosen) == 3 else "-" + "-".join(chosen))
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({"median": result["median"], "load": [load_before, result["load_after"]]}, indent=2))


if __name__ == "__main__":
    main()
