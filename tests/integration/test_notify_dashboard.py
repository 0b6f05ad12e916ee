"""Acknowledge and silence on the Alerts page, in headless Chromium: each is an event on the actions topic
(who, when), shown on the page and kept across a new dashboard process (a replay of the topic)."""

from __future__ import annotations

import time

import orjson
import pytest

from common.config import Settings
from dashboards.app import create_app
from dashboards.notify_board import NotifyBoard
from notify.topics import notify_topics
from streams import topics
from tests.integration.dashboard_support import (
    ServerThread,
    browser_errors,
    build_warehouse,
    change_and_wait,
    chrome,
    load,
    quit_chrome,
    screenshot,
    text_of,
    wait_for,
)
from tests.integration.worker_harness import delete_test_topics, read_topic
from warehouse import queries
from warehouse.reader import Reader

pytestmark = pytest.mark.integration


@pytest.fixture
def notify_site(kafka_settings: Settings, unique: str, tmp_path):
    root = tmp_path / "warehouse"
    build_warehouse(root)
    settings = kafka_settings.replace(topic_alerts=f"t{unique}-alerts", warehouse=str(root))
    topics.ensure_topics(settings, notify_topics(settings))
    with Reader(root) as reader, ServerThread(create_app(settings, reader)) as server:
        yield settings, server, reader
    delete_test_topics(settings, f"t{unique}")


def _actions(settings: Settings) -> list[dict]:
    return [orjson.loads(r.value) for r in read_topic(settings, settings.notify_topics[1])]


def _type(driver, selector: str, text: str) -> None:
    box = driver.find_element("css selector", selector)
    box.clear()
    box.send_keys(text)


def test_acknowledge_and_silence_on_the_alerts_page(notify_site):
    settings, server, reader = notify_site
    open_alerts = queries.alerts(reader, state="open", page_size=200)
    assert len(open_alerts), "the test warehouse needs open alerts"
    driver = chrome()
    try:
        load(driver, server.url + "/alerts")
        wait_for(driver, "document.querySelector('#nt-open-table button') !== null", 30)
        alert_id = driver.execute_script(
            "return document.querySelectorAll('#nt-open-table tbody tr')[0].querySelectorAll('td')[3].innerText;")
        _type(driver, "#nt-who", "Irina (support)")
        change_and_wait(driver, "document.querySelector('#nt-open-table tbody tr button').click()")
        wait_for(driver, "document.getElementById('nt-result').innerText.startsWith('Acknowledged')", 30)
        assert text_of(driver, "#nt-result") == f"Acknowledged {alert_id} as Irina (support)."
        wait_for(driver, "document.querySelector('#nt-acks-table') !== null", 30)
        assert alert_id in text_of(driver, "#nt-acks-table")
        assert alert_id not in text_of(driver, "#nt-open")

        portal = open_alerts["portal_id"].iloc[0]
        _type(driver, "#nt-sil-portal", portal)
        _type(driver, "#nt-sil-type", "controller_bypassed")
        driver.find_element("css selector", "#nt-sil-for input[value='24h']").click()
        _type(driver, "#nt-sil-reason", "Controller maintenance")
        change_and_wait(driver, "document.getElementById('nt-silence').click()")
        wait_for(driver, "document.getElementById('nt-result').innerText.startsWith('Silenced')", 30)
        # The tick re-renders the tables: wait for the silence to be in one, then read it whole.
        wait_for(driver, "(document.querySelector('#nt-silences-table') || {innerText: ''})"
                         ".innerText.includes('Controller maintenance')", 30)
        silences = text_of(driver, "#nt-silences-table")
        assert portal in silences and "Controller maintenance" in silences and "Irina (support)" in silences
        screenshot(driver, "notify-alerts-page")

        # A custom time that is not a duration is refused with the reason, and nothing is published.
        driver.find_element("css selector", "#nt-sil-for input[value='custom']").click()
        _type(driver, "#nt-sil-custom", "a fortnight")
        change_and_wait(driver, "document.getElementById('nt-silence').click()")
        wait_for(driver, "document.getElementById('nt-result').innerText.startsWith('Not done')", 30)
        assert "not a duration" in text_of(driver, "#nt-result")
        assert not browser_errors(driver)
    finally:
        quit_chrome(driver)

    events = _actions(settings)
    assert [e["kind"] for e in events] == ["ack", "silence"]
    ack, silence = events
    assert ack["alert_id"] == alert_id and ack["by"] == "Irina (support)" and ack["at"].endswith("Z")
    assert (silence["portal_id"], silence["type"], silence["reason"]) == (portal, "controller_bypassed",
                                                                          "Controller maintenance")
    assert silence["end_ms"] - silence["start_ms"] == 24 * 3600 * 1000
    # Another process (a dashboard restarted, notify) rebuilds the same state from the topic.
    board = NotifyBoard(settings).start()
    deadline = time.monotonic() + 30
    while not board.actions.acks and time.monotonic() < deadline:
        time.sleep(0.2)
    assert board.actions.acks[alert_id][0] == "Irina (support)"
    assert [s.silence_id for s in board.actions.active(int(time.time() * 1000))] == [silence["id"]]
