"""A producer that is not ours — the official Java client of the broker's jars — feeding the project.

- Every ``compression.type`` Kafka has, one Java run each into one events
  topic: the worker (whose own outputs are compressed too) gives every call its
  ``build_cdr`` CDR, and the sink reads what it wrote.
- Transactions holding whole calls, a third of them aborted after their records
  reached the log: no aborted event reaches a CDR, an alert, the DLQ or the
  warehouse; every committed call's CDR is right; the worker commits its
  offsets to the end of each partition, past the last transaction marker.
- The worker's own producer writes every codec (the log holds far fewer bytes).
- The sink and the rebuild's log reader (kafka-python) keep committed records
  only, and an open transaction holds neither of them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict

import orjson
import pytest

from common.config import Settings
from streams.domain.timefmt import parse_ts_us
from streams.simulator import Faults, Knobs, generate_all
from tests.integration import sink_data
from tests.integration.java_producer import CODECS, Message, records, transactions
from tests.integration.worker_expect import CdrLog, expect, latest_alerts, outage_problems, rules_of
from tests.integration.worker_harness import Fleet, log_bytes, read_topic, wait_until_done
from warehouse import event_log
from warehouse.sink import Sink, SinkOptions
from warehouse.writer import Writer

pytestmark = pytest.mark.integration

START_US = parse_ts_us("2026-11-24T06:00:00Z")
FAULTS = Faults(duplicates=0.05, shuffle=0.3, late_recordings=0.3, malformed=0.02)
KNOBS = Knobs(outage_rate=0.15, stale_key=0.3, license_errors=0.02, dev_copy=0.05, extranet=0.05)
CALLS_PER_CODEC = 120
PER_TRANSACTION = 8  # calls in one transaction
TRANSACTIONS = 30  # every third one aborts
PLAIN_CALLS = 100  # sent without a transaction, before the transactions


Call = list[tuple[int, bytes, bytes]]  # (place in the simulator's order, key, value) of each message


@pytest.fixture(scope="module")
def calls() -> list[Call]:
    """Simulated calls (faults on), each the list of its messages."""
    messages, _ = generate_all(47, len(CODECS) * CALLS_PER_CODEC, 10, START_US, faults=FAULTS, knobs=KNOBS)
    by_key: dict[bytes, Call] = defaultdict(list)
    for index, message in enumerate(messages):
        by_key[message.key].append((index, message.key, message.value))
    return list(by_key.values())


def _interleaved(calls: list[Call]) -> list[Message]:
    """The messages of ``calls`` in the simulator's order (calls overlap as in real traffic)."""
    return [(key, value) for _, key, value in sorted(m for call in calls for m in call)]


def _key(call: Call) -> bytes:
    return call[0][1]


def test_every_codec_of_the_java_client_gives_every_cdr_right(worker_settings, java_producer, calls,
                                                              tmp_path):
    settings = worker_settings
    with Fleet(tmp_path) as fleet:
        # The worker's own producer compresses too: the sink below reads its lz4 batches.
        worker = fleet.start(settings, "worker", CALLSTREAM_COMPRESSION="lz4")
        for index, codec in enumerate(CODECS):
            share = calls[index::len(CODECS)]
            sent = java_producer.run(settings, settings.topic_events, codec, records(_interleaved(share)),
                                     tmp_path / "scripts")
            assert sent == sum(len(call) for call in share)
        wait_until_done(settings, [worker], timeout=240)
        outputs = _outputs(settings)
        assert worker.alive
    # The worker's CDRs were compressed for real (CALLSTREAM_COMPRESSION=lz4).
    raw, stored = sum(len(r.key) + len(r.value) for r in outputs["cdrs"]), log_bytes(settings, settings.topic_cdrs)
    assert stored < raw / 2, f"cdrs: {raw} bytes of keys and values, {stored} in the log"
    events = outputs["events"]
    assert len(events) == sum(len(call) for call in calls)
    expected = _check_worker_outputs(settings, outputs)
    _check_warehouse(settings, tmp_path, expected)


def test_aborted_transactions_of_the_java_client_fold_nothing(worker_settings, java_producer, calls,
                                                              tmp_path):
    settings = worker_settings
    in_transactions = calls[:TRANSACTIONS * PER_TRANSACTION]
    groups = [in_transactions[i:i + PER_TRANSACTION] for i in range(0, len(in_transactions), PER_TRANSACTION)]
    aborted = {i for i in range(len(groups)) if i % 3 == 1}
    aborted_keys = {_key(call) for i in aborted for call in groups[i]}
    with Fleet(tmp_path) as fleet:
        worker = fleet.start(settings, "worker", CALLSTREAM_COMPRESSION="snappy")
        plain = calls[len(in_transactions):len(in_transactions) + PLAIN_CALLS]
        java_producer.run(settings, settings.topic_events, "none", records(_interleaved(plain)),
                          tmp_path / "scripts")
        java_producer.run(settings, settings.topic_events, "gzip",
                          transactions([_interleaved(g) for g in groups], aborted), tmp_path / "scripts",
                          transactional_id=f"{settings.topic_events}-txn")
        # Every partition ends with a transaction marker: done means committed to the very end.
        wait_until_done(settings, [worker], timeout=240)
        outputs = _outputs(settings)
        everything = read_topic(settings, settings.topic_events, isolation_level="read_uncommitted")
        assert worker.alive
    # The aborted calls' records are in the log (a read_uncommitted consumer sees them) ...
    assert aborted_keys <= {r.key for r in everything}
    # ... and nothing of theirs is committed.
    committed = outputs["events"]
    assert not aborted_keys & {r.key for r in committed}
    assert len(committed) == sum(len(call) for call in in_transactions + plain) - \
        sum(len(call) for i in aborted for call in groups[i])
    expected = _check_worker_outputs(settings, outputs)
    leaked = [(topic, r.value[:120]) for topic in ("cdrs", "alerts", "dlq") for r in outputs[topic]
              if any(key in r.value for key in aborted_keys)]
    assert not leaked, f"{len(leaked)} output records name an aborted call: {leaked[:3]}"
    rows = _check_warehouse(settings, tmp_path, expected)
    assert not aborted_keys & {c.encode() for c in rows["events"]}


def _outputs(settings: Settings) -> dict[str, list]:
    return {"events": read_topic(settings, settings.topic_events),
            "cdrs": read_topic(settings, settings.topic_cdrs),
            "alerts": read_topic(settings, settings.topic_alerts),
            "dlq": read_topic(settings, settings.topic_dlq)}


def _check_worker_outputs(settings: Settings, outputs: dict[str, list]):
    """Every call's latest CDR, the per-call alerts and the DLQ are the pure core's for the committed events."""
    expected = expect(outputs["events"], settings)
    assert not expected.incomplete  # every simulated call ends
    log = CdrLog.of(outputs["cdrs"])
    assert not log.problems, log.problems[:10]
    latest = log.latest()
    assert latest.keys() == expected.cdrs.keys()
    wrong = [c for c in latest if latest[c] != expected.cdrs[c]]
    assert not wrong, f"{len(wrong)} calls differ, e.g. {wrong[0]}"
    alerts = latest_alerts(outputs["alerts"])
    assert {i: a for i, a in alerts.items() if a["type"] != "controller_outage"} == expected.alerts
    assert outage_problems(alerts, expected, rules_of(settings)) == []
    dlq = {(d["partition"], d["offset"]): d for d in (orjson.loads(r.value) for r in outputs["dlq"])}
    assert dlq == expected.dlq and len(dlq) == len(outputs["dlq"])
    return expected


def _check_warehouse(settings: Settings, tmp_path, expected) -> dict[str, set[str]]:
    """The sink (kafka-python) loads the committed events and the worker's compressed CDRs."""
    root = tmp_path / "warehouse"
    with Writer(root) as writer:
        Sink(settings, writer, SinkOptions(until_caught_up=True)).run(threading.Event())
    events = sink_data.table_arrow(root, "events")
    want_events = {e.event_id for call in expected.events.values() for e in call}
    assert set(events.column("event_id").to_pylist()) == want_events
    cdrs = set(sink_data.table_arrow(root, "cdrs").column("call_id").to_pylist())
    assert cdrs == expected.cdrs.keys()
    return {"events": set(events.column("call_id").to_pylist()), "cdrs": cdrs}


def test_the_worker_s_producer_writes_every_codec(pipeline_settings, unique):
    """The worker's own producer (Faust's, on aiokafka) with each CALLSTREAM_COMPRESSION."""
    from streams import topics
    from streams.app import create_app

    values = [(b"call-%d" % n, orjson.dumps({"call_id": f"call-{n}", "cost": "12.500", "n": n,
                                             "recording_urls": [f"https://rec.example/{n}.mp3"] * 4}))
              for n in range(300)]
    sizes = {}
    for codec in CODECS:
        settings = pipeline_settings.replace(compression=codec, topic_cdrs=f"t{unique}-cdrs-{codec}")
        topics.ensure_topics(settings, [topics.TopicSpec(settings.topic_cdrs, 2)])
        try:
            asyncio.run(_produce_like_the_worker(create_app(settings), settings.topic_cdrs, values))
            assert sorted((r.key, r.value) for r in read_topic(settings, settings.topic_cdrs)) == sorted(values)
            sizes[codec] = log_bytes(settings, settings.topic_cdrs)
        finally:
            topics.delete_topics(settings, [settings.topic_cdrs])
    assert all(sizes[codec] < sizes["none"] / 2 for codec in CODECS if codec != "none"), sizes


async def _produce_like_the_worker(app, topic: str, values: list[Message]) -> None:
    producer = app.producer
    await producer.start()
    try:
        for key, value in values:
            await producer.send(topic, key, value, None, None, None)
        await producer.flush()
    finally:
        await producer.stop()


# ---------------------------------------------------------------- kafka-python consumers

def _cdr_calls(seed: str) -> list[list[Message]]:
    """The CDR messages of sink_data's calls (garbage left out), grouped by call."""
    by_call: dict[bytes, list[Message]] = defaultdict(list)
    for key, value in sink_data.build(60, seed=seed).cdrs:
        if key != b"junk":
            by_call[key].append((key, value))
    return list(by_call.values())


def test_the_sink_keeps_committed_cdrs_only_and_an_open_transaction_does_not_hold_it(
        pipeline_settings, java_producer, tmp_path):
    settings = pipeline_settings
    calls = _cdr_calls("txn")
    groups = [calls[i:i + 5] for i in range(0, len(calls) - 10, 5)]
    aborted = {i for i in range(len(groups)) if i % 2}
    held = calls[len(groups) * 5:]  # in a transaction still open while the sink runs
    lines = transactions([sum(g, []) for g in groups], aborted) + ["BEGIN", *records(sum(held, [])), "PAUSE"]
    producer = java_producer.start(settings, settings.topic_cdrs, "zstd", lines, tmp_path / "scripts",
                                   transactional_id=f"{settings.topic_cdrs}-txn")
    try:
        began = time.monotonic()
        root = tmp_path / "warehouse"
        with Writer(root) as writer:
            Sink(settings, writer, SinkOptions(until_caught_up=True)).run(threading.Event())
        assert time.monotonic() - began < 30, "the open transaction held the sink"
        got = {r["call_id"]: r["version"] for r in sink_data.table_arrow(root, "cdrs").to_pylist()}
        want = {orjson.loads(v)["call_id"]: orjson.loads(v)["version"]
                for i, g in enumerate(groups) if i not in aborted for call in g for _, v in call[-1:]}
        assert got == want
    finally:
        producer.communicate("go\n", timeout=60)
    assert producer.returncode == 0


def test_the_rebuild_reads_committed_events_only_and_an_open_transaction_does_not_hold_it(
        pipeline_settings, java_producer, calls, tmp_path):
    settings = pipeline_settings
    groups = [calls[i:i + 4] for i in range(0, 40, 4)]
    aborted = {1, 4, 7}
    lines = transactions([_interleaved(g) for g in groups], aborted) \
        + ["BEGIN", *records(_interleaved(calls[40:50])), "PAUSE"]
    producer = java_producer.start(settings, settings.topic_events, "lz4", lines, tmp_path / "scripts",
                                   transactional_id=f"{settings.topic_events}-txn")
    try:
        consumer = event_log.open_consumer(settings)
        try:
            began = time.monotonic()
            snapshot = event_log.take_snapshot(consumer, settings)
            read = [(r.key, r.value) for p in sorted(snapshot.end)
                    for batch in event_log.read_partition(consumer, snapshot, p, timeout_s=20)
                    for r in batch]
            assert time.monotonic() - began < 20, "the open transaction held the rebuild"
        finally:
            consumer.close()
        want = _interleaved([call for i, g in enumerate(groups) if i not in aborted for call in g])
        assert sorted(read) == sorted(want)
    finally:
        producer.communicate("go\n", timeout=60)
    assert producer.returncode == 0
