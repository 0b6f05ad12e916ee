"""Notify's channels on the real broker: retries, a dead channel beside live ones, Bitrix24, silences, the
first start, hostile messages, a broken rules file, ``callstream notify status``."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from common.config import Settings
from common.kafka_clients import producer_options
from notify.ledger import load
from tests.integration.notify_support import HttpReceiver, NotifyProcess, alert, free_port, pairs_in, wait_for
from tests.integration.worker_harness import delete_test_topics, produce, settings_env

pytestmark = pytest.mark.integration
FAST = {"CALLSTREAM_NOTIFY_THRESHOLD_INTERVAL_S": "0", "CALLSTREAM_NOTIFY_BACKOFF_S": "0.05",
        "CALLSTREAM_NOTIFY_BACKOFF_MAX_S": "0.2"}


@pytest.fixture
def notify_settings(pipeline_settings: Settings, unique: str):
    yield pipeline_settings
    delete_test_topics(pipeline_settings, f"t{unique}")


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "callstream.cli", "notify", *args], env=settings_env(settings),
                          capture_output=True, text=True, timeout=120)


def _outcomes(settings: Settings) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for (channel, outcome), n in load(settings, settings.notify_topics[0]).counts.items():
        counts.setdefault(channel, {})[outcome] = n
    return counts


def test_retries_a_dead_channel_and_bitrix24_each_on_their_own(notify_settings, tmp_path):
    settings = notify_settings
    flaky = HttpReceiver(script=[500] * 5)  # five 500s, then 200
    bitrix = HttpReceiver(answer=lambda path, body: (200, b'{"result": 7}'))
    dead = free_port()  # nothing listens: connection refused
    rules = tmp_path / "rules.toml"
    rules.write_text(f'''[[route]]
types = ["controller_outage"]
channels = ["json://127.0.0.1:{flaky.port}/hook", "json://127.0.0.1:{dead}/hook",
            "bitrix24http://127.0.0.1:{bitrix.port}/rest/1/tok3n/?to=5"]
''')
    opened = "2026-12-03T02:00:00.000Z"
    produce(settings, [alert(f"controller_outage:acme:{opened}", "controller_outage", "acme", state="open",
                             opened_at=opened, threshold_calls=5, window_s=300)], topic=settings.topic_alerts)
    notify = NotifyProcess(settings, tmp_path / "notify.log", CALLSTREAM_NOTIFY_RULES=str(rules),
                           CALLSTREAM_NOTIFY_ATTEMPTS="6", **FAST)
    try:
        wait_for(lambda: len(flaky.accepted()) == 1 and len(bitrix.requests) == 1, 60,
                 "the flaky and Bitrix24 channels")
        wait_for(lambda: _outcomes(settings).get(f"json://127.0.0.1:{dead}/hook", {}).get("failed") == 1, 60,
                 "the dead channel's failure in the ledger")
        time.sleep(1.5)
        assert [r["code"] for r in flaky.requests] == [500] * 5 + [200]  # the message once, on its 6th attempt
        keys = {r["headers"]["Idempotency-Key"] for r in flaky.requests}
        assert len(keys) == 1 and keys.pop() in flaky.accepted()[0]["message"]
        # Bitrix24: im.notify.system.add of the webhook, to user 5, not held up by the dead channel.
        (call,) = bitrix.requests
        assert call["path"] == "/rest/1/tok3n/im.notify.system.add"
        payload = json.loads(call["body"])
        assert payload["USER_ID"] == 5 and "Portal acme: the licence Controller is not answering" in payload["MESSAGE"]
        assert call["at"] < flaky.requests[-1]["at"]
        counts = _outcomes(settings)
        assert counts[f"json://127.0.0.1:{flaky.port}/hook"] == {"delivered": 1}
        assert counts[f"bitrix24http://127.0.0.1:{bitrix.port}/rest/1/t...n/"] == {"delivered": 1}
        status = _cli(settings, "status")
        assert status.returncode == 1, status.stdout + status.stderr  # a failed delivery is not a clean status
        assert f"json://127.0.0.1:{dead}/hook: 1 failed" in status.stdout
        assert f"controller_outage:acme:{opened} (open)" in status.stdout
        assert "gave up after 6 attempts" in status.stdout
        assert "tok3n" not in status.stdout
    finally:
        notify.close()
        print(notify.tail(20))
        flaky.close()
        bitrix.close()


def test_silences_first_start_and_hostile_messages(notify_settings, tmp_path):
    settings = notify_settings
    http = HttpReceiver()
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[[route]]\nchannels = ["json://127.0.0.1:{http.port}/hook"]\n')
    silenced = _cli(settings, "silence", "--portal", "quiet", "--for", "2h", "--reason", "planned work", "--by", "ops")
    assert silenced.returncode == 0, silenced.stderr
    two_hours_ago = int((time.time() - 7200) * 1000)
    old = [alert("stale_key:old-1", "stale_key", "loud", call_id="old-1")]
    produce_at(settings, old, two_hours_ago)
    produce(settings, [alert("stale_key:q-1", "stale_key", "quiet", call_id="q-1"),
                       alert("stale_key:l-1", "stale_key", "loud", call_id="l-1"),
                       (b"loud", b"\xff\xfe not json"), (b"loud", b"[1, 2]"),
                       (b"loud", json.dumps({"alert_id": "x:y", "type": "x", "portal_id": "loud",
                                             "ts": "2026-12-03T10:00:00.000Z",
                                             "detail": {"k": "v" * 900_000}}).encode()),
                       alert("stale_key:l-2", "stale_key", "loud", call_id="l-2")], topic=settings.topic_alerts)
    notify = NotifyProcess(settings, tmp_path / "notify.log", CALLSTREAM_NOTIFY_RULES=str(rules), **FAST)
    try:
        wait_for(lambda: len(http.accepted()) >= 3, 60, "the loud portal's alerts")
        time.sleep(2)
        assert sorted(http.pairs()) == [("stale_key:l-1", "open"), ("stale_key:l-2", "open"), ("x:y", "open")]
        outcomes = {o: n for (_, o), n in load(settings, settings.notify_topics[0]).counts.items()}
        assert outcomes == {"delivered": 3, "silenced": 1, "not_delivered_before_first_start": 1}
        notify.stop()
        # A restart delivers nothing again: not the old alert, not the silenced one, not the delivered ones.
        produce(settings, [alert("stale_key:l-3", "stale_key", "loud", call_id="l-3")], topic=settings.topic_alerts)
        notify = NotifyProcess(settings, tmp_path / "notify-2.log", CALLSTREAM_NOTIFY_RULES=str(rules), **FAST)
        wait_for(lambda: len(http.accepted()) >= 4, 60, "the alert produced while notify was down")
        time.sleep(2)
        assert [p for p in http.pairs()][-1] == ("stale_key:l-3", "open") and len(http.pairs()) == 4
        status = _cli(settings, "status", "--json")
        summary = json.loads(status.stdout)
        assert summary["refused"] == 2 and summary["silences"] == 1
    finally:
        notify.close()
        print(notify.tail(20))
        http.close()


def produce_at(settings: Settings, messages, timestamp_ms: int) -> None:
    """Alerts whose Kafka message time is ``timestamp_ms`` (an installation's old history)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(**producer_options(settings))
    try:
        for key, value in messages:
            producer.send(settings.topic_alerts, key=key, value=value, timestamp_ms=timestamp_ms).get(30)
    finally:
        producer.close()


def test_a_broken_rules_file_stops_notify_with_one_line_naming_file_and_line(notify_settings, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[route]]\nchannels = ["json://127.0.0.1:1/x"]\n\n[[route]]\ntypes = ["stale_key"]\n'
                     'channels = ["gopher://nowhere"]\n')
    done = _cli(notify_settings, "--rules", str(rules))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert done.stderr.startswith(f"callstream notify: error: bad rules file: {rules}:6: route 2: channel 1:")
    pairs_in("")  # the receivers' parser takes empty text


def test_a_status_saying_all_is_settled_comes_after_the_cursors_that_say_so(notify_settings, tmp_path):
    """Notify publishes a status at once when all it read is settled, after recording the cursors."""
    from notify.reading import AlertReader
    from notify.status import read_status

    settings = notify_settings
    http = HttpReceiver()
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[[route]]\nchannels = ["json://127.0.0.1:{http.port}/hook"]\ngroup_s = 0\n')
    notify = NotifyProcess(settings, tmp_path / "notify.log", CALLSTREAM_NOTIFY_RULES=str(rules), **FAST)
    try:
        wait_for(lambda: read_status(settings) is not None, 60, "notify's first status")
        portals = [f"p{n}" for n in range(12)]  # over several partitions of the alerts topic
        produce(settings, [alert(f"stale_key:s-{n}", "stale_key", portals[n % 12], call_id=f"s-{n}")
                           for n in range(60)], topic=settings.topic_alerts)
        since_ms = int(time.time() * 1000)
        wait_for(lambda: len(http.accepted()) == 60, 60, "the 60 alerts")
        wait_for(lambda: (s := read_status(settings)) is not None and s["at_ms"] > since_ms
                 and s["unsettled"] == 0 and s["totals"].get("delivered") == 60, 30, "a settled status")
        # The status said settled: the ledger already holds every partition's cursor at its end.
        cursors = load(settings, settings.notify_topics[0]).cursors
        reader = AlertReader(settings, {}, 0)
        try:
            ends = reader.end_offsets()
        finally:
            reader.close()
        assert {p: end for p, end in ends.items() if end} == {p: cursors[p][0] for p, end in ends.items() if end}
        assert len(http.pairs()) == 60
    finally:
        notify.close()
        print(notify.tail(20))
        http.close()
