"""Dashboard in a real browser over 10M CDRs while the sink writes: login, page loads and filter
changes, as users whose every query is scoped.

    python bench/warehouse_generate.py --rows 10000000 --out var/bench-warehouse   # once
    python bench/dashboard_browser.py --warehouse var/bench-warehouse

Users (accounts in the scratch copy's store, a portals file beside it): ``ops``, an operator
who sees every portal in the days of America/New_York (a zone of their own), and ``big``, the
administrator of the largest portal (p-00, 14 % of the calls) in Europe/Moscow, its portal's
zone. Neither zone is UTC: their days are summed from the hourly rollup. Each logs in through
the login form (login -> first page is measured from the form's submission to the Overview
fully rendered), then loads every page it may open and changes its filters.

A scratch copy of the generated warehouse is fed live CDRs (``--rate`` per
second) by ``callstream sink`` in its own process, so every flush publishes a
new manifest and the dashboard's per-manifest cache rarely helps: the figures
are those of a live pipeline. ``callstream dashboard`` serves it (its own
process, waitress). Headless Chromium (tests/integration/dashboard_support.py)
measures, inside the page, from the navigation's start (or from the filter
change) to the moment the page is fully rendered: no Dash callback pending,
every graph drawn, stable for 150 ms (that wait is not counted).

A page that is not rendered within ``--timeout`` seconds is a figure, not the end of the run:
it counts as the timeout (a lower bound, so p95 and max say ">=") and the count of such
renders is printed. On a loaded machine the Overview's render on a new manifest can take
longer than the dashboard's refresh tick (5 s): the tick publishes a new data stamp, Dash
drops the render in flight and starts it again on the newer manifest, and the page may stay
unrendered for as long as every render outlasts the tick.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from warehouse_common import bench_settings, copy_warehouse, drop_topics, feed, percentile, start_sink, stop  # noqa: E402 (the repository root is put on sys.path above)

from tests.integration.dashboard_support import change_and_wait, chrome, load, quit_chrome, wait_rendered  # noqa: E402 (as above)

PAGES = ("/", "/calls", "/spend", "/recordings", "/quality", "/alerts")
# name -> (role, portals, own time zone, password)
USERS = {"ops": ("operator", (), "America/New_York", "bench-operator-pw"),
         "big": ("portal_admin", ("p-00",), None, "bench-portal-admin-pw")}
PORTALS_FILE = {"p-00": {"name": "Romashka (the largest)", "tz": "Europe/Moscow", "currency": "RUB"},
                "*": {"tz": "Europe/Berlin"}}
PERIODS = ("7d", "90d", "month", "30d", "today", "365d")


def _period(value: str) -> str:
    return f"document.querySelector('.period input[value=\"{value}\"]').click()"


def _search(text: str):
    def act(driver) -> None:
        from selenium.webdriver.common.keys import Keys

        box = driver.find_element("css selector", "#calls-number")
        box.clear()
        box.send_keys(text + Keys.ENTER)
    act.label = f"number search {text!r}"
    return act


def _label(action) -> str:
    """A short name of a filter change, for the report of the slowest ones."""
    if callable(action):
        return getattr(action, "label", repr(action))
    for pattern, name in ((r'period input\[value=\\?"([^"\\]*)', "period {}"),
                          (r'recording-filter input\[value=\\?"([^"\\]*)', "has recording {!r}"),
                          (r'data-dash-column=\\?"([a-z_]+)', "sort by {}"),
                          (r"getElementById\('([a-z-]+)'\)", "{}")):
        found = re.search(pattern, action)
        if found:
            return name.format(found.group(1))
    return action[:40]


def changes(path: str):
    """An endless cycle of filter changes a user makes on the page at ``path``."""
    if path != "/calls":
        return itertools.cycle([_period(p) for p in PERIODS])
    # A header's sort control of the call table (one DataTable). The sorts come while every
    # call is shown: "recorded" may leave no row, hence no table, for a portal without
    # recordings (p-00 of the generated data).
    sort = "document.querySelector('#calls-grid th[data-dash-column=\"%s\"] .column-header--sort').click()"
    return itertools.cycle([
        sort % "cost", "document.getElementById('calls-next').click()", sort % "talk_s",
        "document.querySelector('.recording-filter input[value=\"yes\"]').click()",
        "document.querySelector('.recording-filter input[value=\"\"]').click()",
        sort % "started_at", _search("7495"), _search(""),
    ])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def add_users(root: Path) -> Path:
    """The bench's accounts in the warehouse's store and its portals file (returned)."""
    import json

    from dashboards.accounts import Store

    store = Store(root / "accounts.sqlite")
    for name, (role, portals, tz, password) in USERS.items():
        store.add(name, role, portals, password, listen=True)
        if tz:
            store.set_preferences(name, tz=tz)
    path = root.parent / f"{root.name}.portals.json"
    path.write_text(json.dumps(PORTALS_FILE), encoding="utf-8")
    return path


def start_dashboard(root: Path, port: int, portals: Path | None = None) -> subprocess.Popen:
    """``callstream dashboard`` on ``root``; returns once it answers."""
    env = dict(os.environ, **({"CALLSTREAM_PORTALS": str(portals)} if portals else {}))
    process = subprocess.Popen([sys.executable, "-m", "callstream.cli", "dashboard", "--port", str(port),
                                "--warehouse", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the dashboard did not start")


TIMEOUT_MS = 30000
MISSED: list[str] = []  # what was not rendered within TIMEOUT_MS (counted as TIMEOUT_MS)


def timed(what: str, measure_ms) -> float:
    """``measure_ms()``, or TIMEOUT_MS (noted in MISSED) when the page was not rendered in time
    (NaN, noted, when the change's control is not on the page)."""
    from selenium.common.exceptions import JavascriptException

    try:
        return measure_ms()
    except JavascriptException as missing:  # the control is not on the page: nothing to time
        MISSED.append(f"{what}: not done: {missing.msg}")
        print(f"  not done: {what}: {missing.msg}", flush=True)
        return float("nan")
    except AssertionError as missed:
        MISSED.append(f"{what}: {missed}")
        print(f"  not rendered: {what}: {missed}", flush=True)
        return float(TIMEOUT_MS)


def log_in(driver, url: str, name: str) -> float:
    """Log in through the form; milliseconds from its submission to the Overview fully rendered."""
    from selenium.webdriver.common.keys import Keys

    driver.get(url + "/logout")
    driver.get(url + "/login")
    driver.find_element("id", "login-name").send_keys(name)
    # Enter submits the form; the POST, its redirect and the Overview are one navigation, so the
    # page's clock starts at the submission.
    driver.find_element("id", "login-password").send_keys(USERS[name][3] + Keys.ENTER)
    return wait_rendered(driver, 0.0, timeout_ms=TIMEOUT_MS)


def measure_logins(url: str, name: str, logins: int) -> list[float]:
    """Login -> first page, ``logins`` times (after a warm-up), milliseconds."""
    driver = chrome()
    try:
        timed(f"login {name} (warm-up)", lambda: log_in(driver, url, name))
        return [timed(f"login {name}", lambda: log_in(driver, url, name)) for _ in range(logins)]
    finally:
        quit_chrome(driver)


def measure(url: str, loads: int, changes_per_page: int,
            user: str | None = None) -> dict[str, tuple[list[float], list[float]]]:
    """Per page: (load times, filter-change times), milliseconds (logged in as ``user`` if given)."""
    driver = chrome()
    results = {}
    try:
        if user is not None:
            timed(f"login {user}", lambda: log_in(driver, url, user))
        for path in PAGES:
            def page_load(path: str = path) -> float:
                return load(driver, url + path, timeout_ms=TIMEOUT_MS)

            timed(f"load {path} (warm-up)", page_load)  # JS bundles into the browser cache, plotly compiled
            load_ms = [timed(f"load {path}", page_load) for _ in range(loads)]
            actions = changes(path)
            changed = []
            for _ in range(changes_per_page):
                action = next(actions)
                changed.append((_label(action), timed(f"{path} {_label(action)}", lambda a=action: change_and_wait(
                    driver, a, timeout_ms=TIMEOUT_MS))))
            changed = [(name, ms) for name, ms in changed if ms == ms]  # NaN: a change not done
            change_ms = [ms for _, ms in changed] or [float("nan")]
            results[path] = (load_ms, change_ms)
            slowest = "; ".join(f"{name} {ms:.0f} ms" for name, ms in sorted(changed, key=lambda t: -t[1])[:3])
            print(f"{path:12s} load  {_summary(load_ms)}\n{'':12s} change {_summary(change_ms)}\n"
                  f"{'':12s} slowest changes: {slowest}; load average {_load()}", flush=True)
    finally:
        quit_chrome(driver)
    return results


def _summary(values: list[float]) -> str:
    def ms(value: float) -> str:
        return f"{'>=' if value >= TIMEOUT_MS else ''}{value:.0f} ms".rjust(9)

    return (f"median {ms(statistics.median(values))}  p95 {ms(percentile(values, 95))}  "
            f"max {ms(max(values))}  (n={len(values)})")


@contextmanager
def served(warehouse: Path, scratch: Path, rate: float, tag: str) -> Iterator[str]:
    """A copy of ``warehouse`` with the bench's users, served by ``callstream dashboard``; the
    dashboard's URL. With ``rate`` > 0 a sink writes ``rate`` live CDRs/s into the copy (topics
    of their own, ``tag``), so that every flush publishes a new manifest. All removed after."""
    root = copy_warehouse(warehouse, scratch)
    portals = add_users(root)
    settings = feeder = sink = dashboard = None
    try:
        if rate > 0:
            settings = bench_settings(tag)  # creates the topics: only with a sink
            feeder = multiprocessing.Process(target=feed, args=(settings, rate, 24 * 3600, 7), daemon=True)
            feeder.start()
            sink = start_sink(settings, root)
        port = _free_port()
        dashboard = start_dashboard(root, port, portals)
        if sink is not None:
            time.sleep(5)  # the sink's first flushes: the warehouse is live from here on
        yield f"http://127.0.0.1:{port}"
    finally:
        if dashboard is not None:
            dashboard.terminate()
            dashboard.wait(timeout=30)
        if sink is not None:
            stop(sink)
        if feeder is not None:
            feeder.terminate()
        if settings is not None:
            drop_topics(settings)
        shutil.rmtree(root, ignore_errors=True)
        portals.unlink(missing_ok=True)


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=Path("var/bench-warehouse"))
    parser.add_argument("--scratch", type=Path, default=Path("var/bench-dashboard-warehouse"))
    parser.add_argument("--loads", type=int, default=20, help="page loads measured per page")
    parser.add_argument("--changes", type=int, default=20, help="filter changes measured per page")
    parser.add_argument("--rate", type=float, default=100.0, help="live CDRs per second into the sink")
    parser.add_argument("--logins", type=int, default=20, help="logins measured per user")
    parser.add_argument("--users", default=",".join(USERS), help="comma-separated users to measure as")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a page may take to render")
    args = parser.parse_args()
    global TIMEOUT_MS
    TIMEOUT_MS = int(args.timeout * 1000)
    if not (args.warehouse / "manifest.json").exists():
        raise SystemExit(f"no warehouse at {args.warehouse}: run bench/warehouse_generate.py first")
    with served(args.warehouse, args.scratch, args.rate, "dashboard") as url:
        for user in [u for u in args.users.split(",") if u]:
            role, scope, tz, _pw = USERS[user]
            print(f"--- as {user}: {role}, portals {list(scope) or 'all'}, zone "
                  f"{tz or PORTALS_FILE[scope[0]]['tz']}; load average {_load()} ({os.cpu_count()} CPUs)", flush=True)
            logins = measure_logins(url, user, args.logins)
            print(f"login -> first page {_summary(logins)}; load average {_load()}", flush=True)
            results = measure(url, args.loads, args.changes, user)
            all_loads = [v for loads, _ in results.values() for v in loads]
            all_changes = [v for _, changes in results.values() for v in changes]
            print(f"all pages    load  {_summary(all_loads)}\n{'':12s} change {_summary(all_changes)}", flush=True)
        print(f"load average after: {_load()}; not rendered within {args.timeout:.0f} s: {len(MISSED)}")


if __name__ == "__main__":
    main()
