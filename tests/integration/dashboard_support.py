"""Helpers of the dashboard's browser tests and benchmark: headless Chromium, a small
real warehouse, and "fully rendered" measured inside the browser.

Chromium is Debian's (``scripts/ensure-chromium``), driven by its chromium-driver
through Selenium (pinned by ``dash[testing]``).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from datetime import UTC
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# The broker timestamp of every stored message: after every event of the data (contract
# v1.1 refuses an event ts more than 24 h after its message's timestamp).
MESSAGE_MS = 4_102_444_800_000  # 2100-01-01

# Resolves with performance.now() at the first moment the page was fully rendered
# and stayed so for STABLE_MS: no Dash callback pending, the page slot filled, every
# graph drawn, no "…" placeholder left. Rejects (returns -1) after the timeout.
READY_JS = """
const done = arguments[arguments.length - 1];
const since = arguments[0], stableMs = arguments[1], timeoutMs = arguments[2];
let firstReady = null;
function ready() {
  if (document.querySelector('._dash-loading-callback')) return false;
  const page = document.getElementById('page');
  if (!page || !page.children.length) return false;
  const fresh = document.getElementById('freshness');
  if (!fresh || fresh.textContent.startsWith('Connecting')) return false;
  for (const g of document.querySelectorAll('#page .dash-graph')) {
    if (g.classList.contains('dash-graph--pending') || !g.querySelector('.main-svg')) return false;
  }
  for (const v of document.querySelectorAll('#page .kpi-value')) { if (v.textContent === '…') return false; }
  return true;
}
function poll() {
  const now = performance.now();
  if (ready()) {
    if (firstReady === null) firstReady = now;
    if (now - firstReady >= stableMs) { done(firstReady); return; }
  } else { firstReady = null; }
  if (now - since > timeoutMs) { done(-1); return; }
  requestAnimationFrame(poll);
}
poll();
"""


def chrome(width: int = 1400, height: int = 1000) -> Any:
    """A headless Chromium (root-safe flags, throw-away profile) driven by chromium-driver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="callstream-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=options)
    driver.set_script_timeout(60)
    driver._callstream_profile = profile  # removed by quit()
    return driver


def quit_chrome(driver: Any) -> None:
    """Stop the browser and remove its profile."""
    profile = getattr(driver, "_callstream_profile", None)
    driver.quit()
    if profile:
        shutil.rmtree(profile, ignore_errors=True)


def load(driver: Any, url: str, *, stable_ms: int = 150, timeout_ms: int = 30000) -> float:
    """Navigate to ``url``; milliseconds from the navigation's start to the fully rendered page."""
    driver.get(url)
    return wait_rendered(driver, 0.0, stable_ms=stable_ms, timeout_ms=timeout_ms)


def wait_rendered(driver: Any, since: float, *, stable_ms: int = 150, timeout_ms: int = 30000) -> float:
    """performance.now() when the page became fully rendered (AssertionError on timeout)."""
    at = driver.execute_async_script(READY_JS, since, stable_ms, timeout_ms)
    assert at >= 0, f"page not rendered within {timeout_ms} ms: {driver.current_url}"
    return float(at)


def change_and_wait(driver: Any, action: Any, *, stable_ms: int = 150, timeout_ms: int = 30000) -> float:
    """Do ``action`` (JavaScript text, or a callable of the driver) and return ms until the page is
    fully rendered again.

    Waits first for Dash to start the callbacks the change triggers, so the old page
    is never mistaken for the updated one.
    """
    # A fast callback (a point lookup) can start and finish between two polls of the
    # page: an observer installed before the action remembers that one started.
    start = driver.execute_script(WATCH_CALLBACKS_JS)
    if callable(action):
        action(driver)
    else:
        driver.execute_script(action)
    deadline = time.monotonic() + timeout_ms / 1000
    while not driver.execute_script(CALLBACK_SEEN_JS):
        if time.monotonic() > deadline:
            raise AssertionError("the change started no callback")
        time.sleep(0.002)
    return wait_rendered(driver, start, stable_ms=stable_ms, timeout_ms=timeout_ms) - start


WATCH_CALLBACKS_JS = """
window.__callstreamSeen = false;
if (window.__callstreamObserver) window.__callstreamObserver.disconnect();
window.__callstreamObserver = new MutationObserver(function () {
  if (document.querySelector('._dash-loading-callback')) window.__callstreamSeen = true;
});
window.__callstreamObserver.observe(document.documentElement,
  {subtree: true, childList: true, attributes: true, attributeFilter: ['class']});
return performance.now();
"""
CALLBACK_SEEN_JS = ("return !!(window.__callstreamSeen "
                    "|| document.querySelector('._dash-loading-callback'));")


def wait_for(driver: Any, condition_js: str, timeout_s: float = 30.0) -> None:
    """Wait until the JavaScript expression ``condition_js`` is true (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout_s
    while not driver.execute_script(f"return !!({condition_js});"):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_s} s: {condition_js}")
        time.sleep(0.05)


def text_of(driver: Any, selector: str) -> str:
    """The rendered text of the element ``selector`` (empty when absent), read in one script.

    A panel the refresh tick re-renders can replace an element between a find_element and
    its .text (a stale element reference); one script call reads it atomically.
    """
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", selector)


def browser_errors(driver: Any) -> list[str]:
    """Dash error messages shown on the page (callback errors surface in the error container)."""
    return [e.text for e in driver.find_elements("css selector", "._dash-error, .dash-fe-error__title")]


def screenshot(driver: Any, name: str) -> Path:
    """Save a full-height screenshot under test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(1000, int(height)), 6000))
    time.sleep(0.3)  # let the graphs lay out again at the new size
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


class ServerThread:
    """A dashboard Flask server of ``app`` in a background thread (waitress), on a free port."""

    def __init__(self, app: Any) -> None:
        import socket

        import waitress.server

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.server = waitress.server.create_server(app.server, host="127.0.0.1", port=self.port, threads=8)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        """The root URL of the running server."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()
        self.thread.join(timeout=5)


HOSTILE_CALL = "c-hostile"
HOSTILE_TEXT = '<img src=x onerror="document.title=1"><script>window.pwned=1</script>'


def build_warehouse(root: Path, *, calls: int = 600, portals: int = 6, days_ago: int = 3,
                    seed: str = "dash", hostile: bool = False) -> dict[str, Any]:
    """A small real warehouse: simulated calls folded by the real domain code, written by the Writer.

    Events (valid ones), their CDRs, their alerts (plus one open and one resolved
    Controller outage) and DLQ records of the malformed messages; the calls start
    ``days_ago`` UTC days before today. ``hostile`` adds a CDR and an alert carrying
    markup and a ``javascript:`` recording URL, as a producer outside the contract
    might write them. Returns what was written, for the oracles.
    """
    from datetime import datetime, timedelta

    from common.config import Settings
    from streams.domain.alerts import AlertRules, alert_to_json, call_alerts
    from streams.domain.cdr import cdr_from_state
    from streams.domain.cdr_json import cdr_to_json
    from streams.domain.dlq import encode_dlq
    from streams.domain.events import Event
    from streams.domain.rating import load_tariffs
    from streams.domain.state import fold, is_complete
    from streams.domain.validation import validate
    from streams.simulator import Faults, Knobs, generate_all

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start_us = int((today - timedelta(days=days_ago)).timestamp()) * 1_000_000
    knobs = Knobs(outage_rate=0.2, stale_key=0.5, license_errors=0.05, dev_copy=0.05, extranet=0.05)
    messages, _ = generate_all(seed, calls, portals, start_us, Faults(duplicates=0.05, malformed=0.02), knobs)
    tariffs = load_tariffs(Settings.from_env().tariffs_path)
    states: dict[str, Any] = {}
    out: dict[str, list[tuple[bytes | None, bytes]]] = {"events": [], "cdrs": [], "alerts": [], "dlq": []}
    for offset, message in enumerate(messages):
        result = validate(message.value, message.key)
        if isinstance(result, Event):
            out["events"].append((message.key, message.value))
            states[result.call_id], _ = fold(states.get(result.call_id), result)
        else:
            out["dlq"].append((message.key, encode_dlq(result, "call-events", 0, offset, message.value)))
    for call_id, state in sorted(states.items()):
        cdr = cdr_from_state(state, tariffs, incomplete=not is_complete(state))
        out["cdrs"].append((call_id.encode(), cdr_to_json(cdr, 1)))
        out["alerts"] += [(a.portal_id.encode(), alert_to_json(a)) for a in call_alerts(state, cdr, AlertRules())]
    out["alerts"] += _outages(start_us)
    if hostile:
        _add_hostile(out, cdr)
    _write(root, out)
    return {"calls": len(states), "start_us": start_us, **{k: len(v) for k, v in out.items()}}


def _add_hostile(out: dict[str, list], sample: Any) -> None:
    from decimal import Decimal

    from streams.domain.alerts import Alert, alert_to_json
    from streams.domain.cdr_json import cdr_to_json
    from tests.unit.warehouse_samples import CDR

    # An hour ago: on the first page of the newest calls and alerts.
    at_us = (int(time.time()) - 3600) * 1_000_000
    # The biggest spender by far, so that its region tops the spend charts. The sink refuses
    # markup in "from" and a javascript: URL (output_checks.py): the CDR passes it as a valid
    # one, and its text fields turn hostile only in the rows (_with_hostile_text).
    cdr = CDR._replace(call_id=HOSTILE_CALL, portal_id=sample.portal_id, cost=Decimal("99999.00"),
                       started_at_us=at_us, answered_at_us=at_us + 5_000_000, ended_at_us=at_us + 65_333_000)
    out["cdrs"].append((HOSTILE_CALL.encode(), cdr_to_json(cdr, 1)))
    alert = Alert("stale_key:" + HOSTILE_CALL, "stale_key", sample.portal_id, HOSTILE_CALL,
                  at_us, {"note": HOSTILE_TEXT})  # an alert's detail is free: the sink keeps it
    out["alerts"].append((sample.portal_id.encode(), alert_to_json(alert)))


def _with_hostile_text(cdrs: Any) -> Any:
    """The hostile call's row with markup in ``from`` and ``region`` and a ``javascript:`` URL,
    as a writer outside the sink (an old sink, a hand-made load) could leave it: the dashboard
    must show such rows as text whatever wrote them."""
    import pyarrow as pa

    rows = cdrs.to_pylist()
    for row in rows:
        if row["call_id"] == HOSTILE_CALL:
            row.update({"from": HOSTILE_TEXT, "region": HOSTILE_TEXT,
                        "recording_urls": ["javascript:alert(1)", "https://rec.example.com/ok.mp3"]})
    return pa.Table.from_pylist(rows, schema=cdrs.schema)


def _outages(start_us: int) -> list[tuple[bytes, bytes]]:
    """One outage that opened and resolved (same alert_id), one still open."""
    from streams.domain.alerts import Alert, alert_to_json
    from streams.domain.timefmt import format_ts_ms

    hour = 3_600_000_000
    opened, resolved, still = start_us + 10 * hour, start_us + 10 * hour + 600_000_000, start_us + 30 * hour
    messages = []
    for portal, at, end in (("p-outage-a", opened, resolved), ("p-outage-b", still, None)):
        alert_id = f"controller_outage:{portal}:{format_ts_ms(at)}"
        detail = {"state": "open", "opened_at": format_ts_ms(at), "opened_by_call_id": "c-x",
                  "threshold_calls": 5, "window_s": 300, "resolved_at": None, "resolved_by_call_id": None}
        alert = Alert(alert_id, "controller_outage", portal, None, at, detail)
        messages.append((portal.encode(), alert_to_json(alert)))
        if end is not None:
            done = dict(detail, state="resolved", resolved_at=format_ts_ms(end), resolved_by_call_id="c-y")
            messages.append((portal.encode(),
                             alert_to_json(Alert(alert_id, "controller_outage", portal, None, end, done))))
    return messages


def _write(root: Path, out: dict[str, list[tuple[bytes | None, bytes]]]) -> None:
    from warehouse.decode import RawBatch, decode_buffers
    from warehouse.writer import Batch, Writer

    buffers = {}
    # A DLQ record's time is its message's: refused just now, inside every period of the pages.
    stamps = {"dlq": int(time.time() * 1000)}
    for table, messages in out.items():
        raw = RawBatch(table)
        for offset, (key, value) in enumerate(messages):
            raw.add(0, offset, stamps.get(table, MESSAGE_MS), key, value)
        buffers[table] = raw
    with Writer(root) as writer:
        con = writer.cursor()
        try:
            tables = decode_buffers(con, buffers, {t: t for t in buffers})
        finally:
            con.close()
        assert "rejects" not in tables, tables.get("rejects")
        tables["cdrs"] = _with_hostile_text(tables["cdrs"])
        writer.write(Batch(tables, {t: {0: len(m)} for t, m in out.items()}))
