"""A live warehouse in a real browser: a page whose render outlasts the refresh tick still lands.

The sink of a busy pipeline publishes a manifest at every flush, so every tick of the
dashboard's refresh brings a new data stamp. Dash drops a callback's result when one of
its inputs changed meanwhile, and the new render starts on an empty per-manifest cache:
before issue 15's fix a page slower than the tick (the Spend page of 10 M calls in a
zoned user's days) never rendered. Here every query is made slower than the tick by the
data door itself (the warehouse, the app and the browser are real), and the sink's
publishes are a writer publishing every 0.2 s.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from common.config import Settings
from dashboards.app import create_app
from dashboards.data import Context, Data, SteadyReader
from tests.integration.dashboard_support import ServerThread, build_warehouse, chrome, load, quit_chrome
from warehouse.reader import Reader
from warehouse.writer import Writer

pytestmark = pytest.mark.integration

TICK_S = 1.0
QUERY_S = 1.0  # the Spend page runs four queries in one callback: a render of 4 s, four ticks


class SlowData(Data):
    """The dashboard's data door, each query slowed down as on a loaded 10M-call warehouse;
    remembers the data stamp of each query it answered."""

    def __init__(self, reader: Reader) -> None:
        super().__init__(reader)
        self.stamps: list[int | None] = []
        self.running = 0

    def get(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.running += 1
        try:
            time.sleep(QUERY_S)
            self.stamps.append(self.seq())
            return super().get(query, *args, **kwargs)
        finally:
            with self._lock:
                self.running -= 1

    def drain(self, timeout_s: float = 30.0) -> None:
        """Wait for the queries still running (a closed page's callbacks finish on the server)."""
        deadline = time.monotonic() + timeout_s
        while self.running and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def live(tmp_path):
    root = tmp_path / "warehouse"
    build_warehouse(root)
    settings = Settings.from_env({"CALLSTREAM_WAREHOUSE": str(root), "CALLSTREAM_REFRESH_S": str(TICK_S)})
    stop = threading.Event()
    with Writer(root) as writer, SteadyReader(root) as reader:  # the dashboard's own reader
        data = SlowData(reader)

        def publish() -> None:
            while not stop.wait(0.2):
                writer.publish()  # a new manifest, as the sink's flushes of a live pipeline

        publisher = threading.Thread(target=publish, daemon=True)
        publisher.start()
        try:
            with ServerThread(create_app(settings, reader, context=Context(settings, data))) as server:
                yield server, data, writer
                data.drain()
        finally:
            stop.set()
            publisher.join(timeout=5)


@pytest.fixture
def browser():
    driver = chrome()
    yield driver
    quit_chrome(driver)


def test_a_render_longer_than_the_tick_lands_then_the_page_follows_the_data(live, browser):
    server, data, writer = live
    start = writer.manifest.seq
    load(browser, f"{server.url}/spend", timeout_ms=30_000)
    assert browser.find_elements("css selector", "#spend-totals-table")
    assert writer.manifest.seq > start + 5  # the warehouse moved on all along
    # Once rendered, the page follows the newer data.
    rendered_up_to = max(s for s in data.stamps if s is not None)
    deadline = time.monotonic() + 20
    while not any(s is not None and s > rendered_up_to for s in data.stamps):
        assert time.monotonic() < deadline, "the page never refreshed after its render landed"
        time.sleep(0.1)
    browser.get("about:blank")  # no more callbacks: the server's queries drain before it closes
