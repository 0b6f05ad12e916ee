"""The sink against the real broker: contents, re-consumption, kill -9, CLI errors, freshness."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC
from decimal import Decimal
from pathlib import Path

import pytest

from common.kafka_clients import producer_options
from tests.integration import sink_data
from warehouse import compaction
from warehouse.layout import load_manifest
from warehouse.reader import Reader
from warehouse.sink import Sink, SinkOptions
from warehouse.writer import Writer

pytestmark = pytest.mark.integration


def run_sink(settings, root: Path, **options):
    """The sink in this process until it has read every partition to its end."""
    with Writer(root) as writer:
        return Sink(settings, writer, SinkOptions(until_caught_up=True, **options)).run(threading.Event())


def sink_command(settings, root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "callstream.cli", "sink", "--bootstrap", settings.bootstrap,
            "--topic-events", settings.topic_events, "--topic-cdrs", settings.topic_cdrs,
            "--topic-alerts", settings.topic_alerts, "--topic-dlq", settings.topic_dlq,
            "--group", settings.sink_group, "--warehouse", str(root), *extra]


def end_offsets(settings) -> dict[str, dict[int, int]]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=settings.sink_group,
                             enable_auto_commit=False)
    try:
        result: dict[str, dict[int, int]] = {}
        for topic in (settings.topic_events, settings.topic_cdrs, settings.topic_alerts, settings.topic_dlq):
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            for tp, end in consumer.end_offsets(tps).items():
                committed = consumer.committed(tp)
                result.setdefault(topic, {})[tp.partition] = (end, committed)
        return result
    finally:
        consumer.close()


def test_the_sink_loads_every_topic_by_its_winner_rule(pipeline_settings, tmp_path):
    data = sink_data.build(300)
    sink_data.produce(pipeline_settings, data)
    root = tmp_path / "warehouse"
    stats = run_sink(pipeline_settings, root)
    assert stats.messages == len(data.events) + len(data.cdrs) + len(data.alerts) + len(data.dlq)

    cdrs = {row["call_id"]: row for row in sink_data.table_arrow(root, "cdrs").to_pylist()}
    assert cdrs.keys() == data.latest_cdr.keys()
    for call_id, value in data.latest_cdr.items():
        expected, row = json.loads(value, parse_float=Decimal), cdrs[call_id]
        assert row["version"] == expected["version"]
        assert row["cost_text"] == expected["cost"] and row["rate_per_min_text"] == expected["rate_per_min"]
        assert row["talk_s"] == expected["talk_s"] and row["recording_urls"] == expected["recording_urls"]
        assert (row["started_at"] is None) == (expected["started_at"] is None)
    events = sink_data.table_arrow(root, "events").column("event_id").to_pylist()
    assert sorted(events) == sorted(data.event_ids)
    dlq = sink_data.table_arrow(root, "dlq").to_pylist()
    assert len(dlq) == len({json.loads(v)["offset"] for _, v in data.dlq})
    alerts = sink_data.table_arrow(root, "alerts").to_pylist()
    assert [(a["type"], a["state"]) for a in alerts if a["type"] == "controller_outage"] == \
        [("controller_outage", "resolved")]
    assert sink_data.table_arrow(root, "rejects").num_rows == data.garbage_cdrs

    manifest = load_manifest(root)
    for topic, partitions in end_offsets(pipeline_settings).items():
        for partition, (end, committed) in partitions.items():
            assert manifest.offsets.get(topic, {}).get(partition, 0) == end
            assert committed == (end if end else None)


def test_reading_the_topics_again_from_the_beginning_leaves_the_same_tables(pipeline_settings, tmp_path):
    sink_data.produce(pipeline_settings, sink_data.build(200, seed="again"))
    root = tmp_path / "warehouse"
    first = run_sink(pipeline_settings, root)
    snapshot = tmp_path / "snapshot"
    shutil.copytree(root, snapshot)
    again = run_sink(pipeline_settings, root, from_beginning=True)
    assert again.skipped == first.messages and not again.rows
    sink_data.assert_same_warehouse(snapshot, root)
    # A brand-new warehouse replaying the same topics (a rebuild) ends up the same too.
    fresh = run_sink(pipeline_settings.replace(sink_group=pipeline_settings.sink_group + "-fresh"),
                     tmp_path / "fresh")
    assert fresh.messages == first.messages
    sink_data.assert_same_warehouse(root, tmp_path / "fresh")


def test_kill_9_at_any_moment_and_a_restart_leave_the_same_tables(pipeline_settings, tmp_path):
    sink_data.produce(pipeline_settings, sink_data.build(5000, seed="kill"))
    clean = tmp_path / "clean"
    run_sink(pipeline_settings.replace(sink_group=pipeline_settings.sink_group + "-clean"), clean)
    crashed = tmp_path / "crashed"
    small = ("--flush-interval", "0.02", "--flush-rows", "50", "--compact-files", "2",
             "--compact-rows", "400", "--compact-age", "0.2", "--compact-interval", "0",
             "--until-caught-up", "--log-level", "WARNING")
    rng = random.Random(9)
    kills = 0
    for _ in range(10):
        sink = subprocess.Popen(sink_command(pipeline_settings, crashed, *small),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.4, 1.8))  # from start-up to mid-flush, mid-compaction
        if sink.poll() is not None:
            break  # it caught up on its own
        sink.send_signal(signal.SIGKILL)
        sink.wait()
        kills += 1
    final = subprocess.run(sink_command(pipeline_settings, crashed, *small), capture_output=True,
                           text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert kills >= 3, "the sink finished before it could be killed: make the data set larger"
    sink_data.assert_same_warehouse(clean, crashed)
    for root in (clean, crashed):
        with Writer(root) as writer:
            compaction.compact_all(writer)
    sink_data.assert_same_warehouse(clean, crashed)


def test_a_cdr_becomes_visible_to_a_reader_in_another_process(pipeline_settings, tmp_path):
    from kafka import KafkaProducer

    root = tmp_path / "warehouse"
    sink = subprocess.Popen(sink_command(pipeline_settings, root), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        producer = KafkaProducer(**producer_options(pipeline_settings))
        data = sink_data.build(5, seed="fresh")
        call_id, value = next(iter(data.latest_cdr.items()))
        deadline = time.monotonic() + 30
        producer.send(pipeline_settings.topic_cdrs, key=call_id.encode(), value=value)
        producer.flush()
        with Reader(root) as reader:
            while time.monotonic() < deadline:
                with reader.cursor() as con:
                    if con.execute("SELECT count(*) FROM cdrs WHERE call_id = ?", [call_id]).fetchall()[0][0]:
                        break
                time.sleep(0.05)
            else:
                pytest.fail("the CDR never became visible")
    finally:
        sink.send_signal(signal.SIGTERM)
        _, stderr = sink.communicate(timeout=30)
    assert sink.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_sink_errors_are_one_line(pipeline_settings, tmp_path):
    root = tmp_path / "warehouse"
    missing = subprocess.run(sink_command(pipeline_settings.replace(topic_alerts="no-such-topic-x1"), root),
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == (
        "callstream sink: error: topic 'no-such-topic-x1' does not exist on "
        f"{pipeline_settings.bootstrap} (create it with `callstream topics create`)")
    assert "Traceback" not in missing.stderr
    with Writer(root):
        busy = subprocess.run(sink_command(pipeline_settings, root), capture_output=True, text=True,
                              timeout=60)
    assert busy.returncode == 1
    assert busy.stderr.strip() == f"callstream sink: error: another process is writing the warehouse at {root}"


LINK = '=HYPERLINK("http://x","y")'
_TEXT_FIELDS = ("call_id", "portal_id", "direction", "line", "from", "to", "line_number", "shown_number",
                "user_id", "started_at", "answered_at", "ended_at", "status", "hangup_cause", "forwarded_to",
                "controller", "controller_result", "region", "rate_per_min", "cost", "currency")


def _allow_big_messages(settings, topic: str, limit: int) -> None:
    """Let the topic take messages of up to ``limit`` bytes (a producer outside ours might)."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap)
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                    configs={"max.message.bytes": str(limit)})])
                return
            except ValueError as exc:
                # kafka-python checks the names against the topic's configs as the broker
                # describes them; just after the topic's creation that list can still be empty.
                if "Unrecognized configs" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        admin.close()


def _forged_cdrs() -> list[tuple[bytes, bytes | None, str]]:
    """(key, value, the reason the sink must give) of CDRs written by someone else than the worker."""
    good = json.loads(sink_data.cdr("c-good", 1))

    def cdr(call_id: str, **changes) -> bytes:
        return json.dumps({**good, "call_id": call_id, **changes}).encode()

    urls = [f"https://rec.example/{n:06d}/" + "a" * 2000 for n in range(5000)]  # ~10 MB
    return [
        (LINK.encode(), json.dumps({**good, **{f: LINK for f in _TEXT_FIELDS}}).encode(), "bad_field:call_id"),
        (b"c-region", cdr("c-region", region=LINK), "bad_field:region"),
        (b"c-sum", cdr("c-sum", region="@SUM(1)"), "bad_field:region"),
        (b"c-from", cdr("c-from", **{"from": "@SUM(1)"}), "bad_field:from"),
        (b"c-negative", cdr("c-negative", cost="-1.53"), "bad_field:cost"),
        (b"c-three", cdr("c-three", cost="1.534"), "bad_field:cost"),
        (b"c-big", cdr("c-big", recording_urls=urls), "too_large"),
        (b"c-url", cdr("c-url", recording_urls=["javascript:alert(1)"]), "bad_field:recording_urls"),
        (b"c-other-key", cdr("c-keyed"), "bad_key"),
        (b"c-tombstone", None, "not_json"),
    ]


def test_forged_cdrs_and_alerts_never_reach_the_warehouse_or_the_billing_csv(pipeline_settings, tmp_path):
    """Issue 12, finding 5, end to end: forged messages on the real topics, the sink, the export."""
    from datetime import datetime

    from kafka import KafkaProducer

    from streams.domain.alerts import Alert, alert_to_json
    from tests.unit.warehouse_samples import T0
    from warehouse import dashboard_queries
    from warehouse.export import export_to_file

    settings = pipeline_settings
    _allow_big_messages(settings, settings.topic_cdrs, 16 * 1024 * 1024)
    forged = _forged_cdrs()
    alert = json.loads(alert_to_json(Alert("stale_key:c-good", "stale_key", "p-1", "c-good", T0, {"key_age_s": 1})))
    alerts = [(b"p-1", json.dumps(alert).encode(), None),
              (b"p-1", json.dumps({**alert, "type": LINK}).encode(), "bad_field:type"),
              (b"p-1", json.dumps({**alert, "detail": {"state": "closed"}}).encode(), "bad_field:detail.state"),
              (b"p-2", json.dumps(alert).encode(), "bad_key")]
    producer = KafkaProducer(max_request_size=32 * 1024 * 1024, **producer_options(settings))
    producer.send(settings.topic_cdrs, key=b"c-good", value=sink_data.cdr("c-good", 1))
    for key, value, _ in forged:
        producer.send(settings.topic_cdrs, key=key, value=value)
    for key, value, _ in alerts:
        producer.send(settings.topic_alerts, key=key, value=value)
    producer.flush()
    producer.close()

    root = tmp_path / "warehouse"
    stats = run_sink(settings, root)
    assert stats.messages == 1 + len(forged) + len(alerts)
    assert sink_data.table_arrow(root, "cdrs").column("call_id").to_pylist() == ["c-good"]
    assert sink_data.table_arrow(root, "alerts").column("alert_id").to_pylist() == ["stale_key:c-good"]
    # Keys spread the messages over partitions: a reject is known by its topic and value.
    rejects = {(r["topic"], r["raw"]): r for r in sink_data.table_arrow(root, "rejects").to_pylist()}
    expected = {(topic, value and value[:65536]): reason
                for topic, messages in ((settings.topic_cdrs, forged), (settings.topic_alerts, alerts))
                for _, value, reason in messages if reason}
    assert {position: r["reason"] for position, r in rejects.items()} == expected
    big = forged[6][1]
    assert rejects[(settings.topic_cdrs, big[:65536])]["raw_bytes"] == len(big) > 10_000_000

    out = tmp_path / "billing.csv"
    with Reader(root) as reader:
        assert export_to_file(reader, out, datetime(2026, 11, 1, tzinfo=UTC),
                              datetime(2026, 12, 1, tzinfo=UTC)) == 1
        refused = dashboard_queries.refused_counts(reader)
    text = out.read_text()
    assert text.splitlines()[1].startswith("c-good,") and len(text.splitlines()) == 2
    assert "HYPERLINK" not in text and "@SUM" not in text and "-1.53" not in text and "javascript" not in text
    assert dict(zip(refused["reason"], refused["count"]))[f"{settings.topic_cdrs} bad_field:region"] == 2
