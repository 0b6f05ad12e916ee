"""``callstream notify`` on the real broker, with real receivers: a simulator run with outages through the
worker, notify killed with ``kill -9`` mid-run and restarted, every (alert_id, state) owed received by an
HTTP receiver (json://) and an SMTP server (mailto://), none twice where the idempotency key tells."""

from __future__ import annotations

import json
import time
from collections import defaultdict

import pytest

from common.config import Settings
from notify.alerts import parse_alert
from notify.ledger import load
from streams.domain.timefmt import parse_ts_us
from streams.simulator import Faults, Knobs, generate_all
from tests.integration.notify_support import KEY_LINE, HttpReceiver, NotifyProcess, SmtpReceiver, pairs_in, wait_for
from tests.integration.worker_harness import Fleet, produce, read_topic, wait_until_done, worker_settings

pytestmark = pytest.mark.integration
__all__ = ["worker_settings"]

ISSUE_RULES = '''[[route]]
types = ["controller_bypassed", "controller_outage", "stale_key"]
portals = ["*"]
states = ["open", "resolved"]
channels = ["json://127.0.0.1:18111/hook"]
group_s = 0
'''
ROUTED = {"controller_bypassed", "controller_outage", "stale_key"}
MAILED = {"controller_outage", "stale_key"}  # mail is slower: the bypasses go over HTTP only
START_US = parse_ts_us("2026-11-24T06:00:00Z")
KNOBS = Knobs(outage_rate=0.25, stale_key=0.3, license_errors=0.02)
FAULTS = Faults(duplicates=0.05, shuffle=0.3, malformed=0.01)


def _owed(settings: Settings, types: set[str]) -> set[tuple[str, str]]:
    """Distinct (alert_id, state) on the alerts topic of ``types``, opened or resolved (what the rules route)."""
    owed = set()
    for record in read_topic(settings, settings.topic_alerts):
        alert = parse_alert(record.value, record.partition, record.offset, record.timestamp)
        if getattr(alert, "type", None) in types and alert.state in ("open", "resolved"):
            owed.add(alert.pair)
    return owed


def _by_pair(messages: list[str]) -> dict[tuple[str, str], set[str]]:
    """(alert_id, state) -> the idempotency keys of the messages that carried it."""
    keys = defaultdict(set)
    for text in messages:
        key = KEY_LINE.search(text).group(1)
        for pair in pairs_in(text):
            keys[pair].add(key)
    return keys


def test_every_owed_alert_state_reaches_http_and_smtp_once_across_kill_9(worker_settings, tmp_path):
    settings = worker_settings.replace(output_partitions=4)
    try:  # the issue's rules file names port 18111; a small delay per request keeps notify busy
        http = HttpReceiver(answer=lambda path, body: (time.sleep(0.01), (200, b"{}"))[1], port=18111)
    except OSError as exc:
        pytest.fail(f"port 18111, which the issue's rules file names, is taken: {exc}")
    smtp = SmtpReceiver()
    rules = tmp_path / "rules.toml"
    rules.write_text('[[route]]\nname = "mail"\ntypes = ["controller_outage", "stale_key"]\n'
                     f'states = ["open", "resolved"]\nchannels = ["{smtp.url()}"]\ncontinue = true\n\n' + ISSUE_RULES)
    messages, _ = generate_all(14, 1500, 6, START_US, faults=FAULTS, knobs=KNOBS)
    produce(settings, [(m.key, m.value) for m in messages])
    produce(settings, [(b"p-x", b"{not an alert"), (b"p-x", json.dumps({"alert_id": 1}).encode())],
            topic=settings.topic_alerts)
    env = {"CALLSTREAM_NOTIFY_RULES": str(rules), "CALLSTREAM_NOTIFY_THRESHOLD_INTERVAL_S": "0",
           "CALLSTREAM_NOTIFY_BACKOFF_S": "0.05", "CALLSTREAM_NOTIFY_BACKOFF_MAX_S": "0.5"}
    notifies = []
    try:
        with Fleet(tmp_path) as fleet:
            worker = fleet.start(settings, "worker")
            notifies.append(NotifyProcess(settings, tmp_path / "notify-1.log", **env))
            wait_for(lambda: len(http.requests) >= 40, 120, "notify's first deliveries",
                     check=lambda: _alive(notifies[-1]))
            notifies[-1].kill()  # kill -9, mid-run: deliveries in flight, the ledger a second behind
            killed_at = len(http.requests)
            wait_until_done(settings, [worker], timeout=240)
        owed, mailed = _owed(settings, ROUTED), _owed(settings, MAILED)
        assert len(owed) > killed_at, "the kill must land before everything was delivered"
        assert mailed and any(state == "resolved" for _, state in mailed)
        notifies.append(NotifyProcess(settings, tmp_path / "notify-2.log", **env))
        try:
            wait_for(lambda: _received(http) >= owed and _received_mail(smtp) >= mailed, 180,
                     "every owed (alert_id, state) on both channels", check=lambda: _alive(notifies[-1]))
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {len(owed)} owed, missing {len(owed - _received(http))} on http, "
                                 f"{len(mailed - _received_mail(smtp))} by mail, e.g. "
                                 f"{sorted(owed - _received(http))[:3]}") from None
        time.sleep(3)  # anything more that would come
        for name, texts, expected in (("http", [b["message"] for b in http.accepted()], owed),
                                      ("smtp", _mail_texts(smtp), mailed)):
            keys = _by_pair(texts)
            assert set(keys) == expected, \
                f"{name}: {len(set(keys) - expected)} extra, {len(expected - set(keys))} missing"
            twice = {pair: k for pair, k in keys.items() if len(k) > 1}
            assert not twice, f"{name}: one (alert_id, state) under two idempotency keys: {list(twice)[:3]}"
        repeats = len(http.pairs()) - len(owed)
        assert repeats <= 40, f"{repeats} repeated deliveries after the kill (at most ~1 s of sends expected)"
        ledger = load(settings, settings.notify_topics[0])
        counts = {o: n for (_, o), n in ledger.counts.items() if o == "delivered"}
        assert sum(n for (ch, o), n in ledger.counts.items() if o == "delivered" and ch.startswith("json")) == len(owed)
        assert counts
    finally:
        for process in notifies:
            process.close()
            print(f"----- {process.log_path.name} -----\n{process.tail(15)}")
        http.close()
        smtp.close()


def _alive(process: NotifyProcess) -> None:
    assert process.proc.poll() is None, f"notify exited with {process.proc.returncode}:\n{process.tail()}"


def _received(http: HttpReceiver) -> set[tuple[str, str]]:
    return set(http.pairs())


def _mail_texts(smtp: SmtpReceiver) -> list[str]:
    texts = []
    for message in list(smtp.messages):
        part = message if not message.is_multipart() else message.get_payload(0)
        texts.append(part.get_payload(decode=True).decode("utf-8", "replace"))
    return texts


def _received_mail(smtp: SmtpReceiver) -> set[tuple[str, str]]:
    return {pair for text in _mail_texts(smtp) for pair in pairs_in(text)}
