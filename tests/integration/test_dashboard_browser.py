"""Every page in a real headless Chromium: rendered, filters exercised, a screenshot each.

Screenshots go to ``test-artifacts/`` (gitignored). The app runs in-process under
waitress over a small real warehouse that also holds hostile text (markup, a
``javascript:`` recording URL), which must reach the browser as text only.
"""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest

from common.config import Settings
from dashboards.app import create_app
from tests.integration.dashboard_support import (
    HOSTILE_CALL,
    HOSTILE_TEXT,
    ServerThread,
    browser_errors,
    build_warehouse,
    change_and_wait,
    chrome,
    load,
    quit_chrome,
    screenshot,
    wait_for,
)
from warehouse.reader import Reader

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    root = tmp_path_factory.mktemp("dash-browser") / "warehouse"
    build_warehouse(root, hostile=True)
    return root


@pytest.fixture(scope="module")
def site(warehouse):
    settings = Settings.from_env({"CALLSTREAM_WAREHOUSE": str(warehouse)})
    with Reader(warehouse) as reader, ServerThread(create_app(settings, reader)) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    driver = chrome()
    yield driver
    quit_chrome(driver)


def _text(driver, selector: str) -> str:
    return driver.find_element("css selector", selector).text


def _count(driver, selector: str) -> int:
    return len(driver.find_elements("css selector", selector))


# The call table is one DataTable: its cells carry their column's id, its header cells too.
ROWS = "#calls-grid td.dash-cell[data-dash-column='started_at']"


def _sort_by(column: str) -> str:
    """The click on a column's header of the call table (its sort control)."""
    return f"document.querySelector('#calls-grid th[data-dash-column=\"{column}\"] .column-header--sort').click()"


def _sorted(driver, column: str, icon: str) -> bool:
    """Whether ``column`` is the one the table shows sorted, with ``icon`` (sort-down / sort-up)."""
    return (_count(driver, f"#calls-grid th[data-dash-column='{column}'] svg[data-icon='{icon}']") == 1
            and _count(
                driver, "#calls-grid th svg[data-icon='sort-down'], #calls-grid th svg[data-icon='sort-up']") == 1)


def test_overview(site, browser) -> None:
    load(browser, site.url + "/")
    assert not browser_errors(browser)
    assert _count(browser, ".kpi-value") == 7 and "…" not in _text(browser, "#ov-cards")
    assert _text(browser, "#freshness").startswith("Updated")
    month = int(_text(browser, "#kpi-calls-value").replace(" ", ""))
    screenshot(browser, "dashboard-overview")
    change_and_wait(browser, "document.querySelector('.period input[value=\"today\"]').click()")
    today = int(_text(browser, "#kpi-calls-value").replace(" ", ""))
    assert today < month  # the test calls started days ago
    assert browser.find_element("css selector", "#kpi-spend-today").get_attribute("href").endswith("/spend")


def test_call_detail_filters_sort_pages_and_opens_a_call(site, browser) -> None:
    load(browser, site.url + "/calls")
    assert not browser_errors(browser)
    rows = _count(browser, ROWS)
    assert rows == 50 and "page 1 of" in _text(browser, "#calls-summary")
    assert _sorted(browser, "started_at", "sort-down")  # newest first
    change_and_wait(browser, "document.getElementById('calls-next').click()")
    assert "page 2 of" in _text(browser, "#calls-summary")
    change_and_wait(browser, _sort_by("talk_s"))  # another column: by it, descending, from page 1
    assert _sorted(browser, "talk_s", "sort-down") and "page 1 of" in _text(browser, "#calls-summary")
    talk_cells = "#calls-grid td[data-dash-column='talk_s']"
    talks = [cell.text for cell in browser.find_elements("css selector", talk_cells)]
    change_and_wait(browser, _sort_by("talk_s"))  # the same column again: the other order
    assert _sorted(browser, "talk_s", "sort-up") and _count(browser, ROWS) == 50
    assert [cell.text for cell in browser.find_elements("css selector", talk_cells)] != talks
    change_and_wait(browser, "document.querySelector('.recording-filter input[value=\"yes\"]').click()")
    recorded = _text(browser, "#calls-summary")
    href = browser.find_element("css selector", "#calls-download").get_attribute("href")
    assert json.loads(parse_qs(urlsplit(href).query)["q"][0])["recording"] == "yes"
    with urllib.request.urlopen(href) as response:
        lines = response.read().decode().split("\r\n")
    assert lines[0].startswith("call_id,portal_id")
    assert int(recorded.split()[0]) == len([line for line in lines[1:] if line])
    screenshot(browser, "dashboard-calls")
    change_and_wait(browser, f"document.querySelector({json.dumps(ROWS)}).click()")
    assert _text(browser, "#call-title").startswith("Call ")
    assert _count(browser, "#call-timeline tbody tr") >= 2 and _count(browser, "#call-recordings a") >= 1
    assert _count(browser, "#call-recordings audio") >= 1
    screenshot(browser, "dashboard-call-opened")
    first = _text(browser, "#call-title")  # another row (a cell of another column): its own call
    change_and_wait(browser,
                    "document.querySelectorAll('#calls-grid td.dash-cell[data-dash-column=\"to\"]')[1].click()")
    assert _text(browser, "#call-title").startswith("Call ") and _text(browser, "#call-title") != first


def _search(driver, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element("css selector", "#calls-number")
    box.clear()
    box.send_keys(text + Keys.ENTER)


def test_number_search(site, browser) -> None:
    load(browser, site.url + "/calls")
    number = _text(browser, "#calls-grid td.dash-cell[data-dash-column='to']")
    change_and_wait(browser, lambda d: _search(d, number))
    wait_for(browser, "!document.getElementById('calls-summary').textContent.startsWith('601 ')")
    found = int(_text(browser, "#calls-summary").split()[0])
    rows = browser.find_elements("css selector", "#calls-grid tr:has(td.dash-cell)")
    assert found >= 1 and len(rows) == min(found, 50) and all(number in row.text for row in rows)


@pytest.mark.parametrize("path, name, probe", [("/spend", "spend", "#spend-totals-table"),
                                               ("/recordings", "recordings", "#rec-top-table"),
                                               ("/alerts", "alerts", "#al-outages-table")])
def test_analytics_pages(site, browser, path, name, probe) -> None:
    load(browser, site.url + path)
    assert not browser_errors(browser)
    assert _count(browser, probe) == 1 and _count(browser, "#page .main-svg") >= 2
    screenshot(browser, f"dashboard-{name}")
    change_and_wait(browser, "document.querySelector('.period input[value=\"365d\"]').click()")
    assert not browser_errors(browser)


def test_hostile_text_is_only_text(site, browser) -> None:
    load(browser, site.url + "/alerts")
    shown = _text(browser, "#al-latest-table")  # the detail is JSON: its quotes are escaped
    assert "<script>window.pwned=1</script>" in shown and "<img src=x onerror=" in shown
    assert browser.execute_script("return window.pwned === undefined && document.title === 'callstream'")
    assert _count(browser, "#al-latest-table img, #al-latest-table script") == 0
    load(browser, site.url + "/calls")
    change_and_wait(browser, lambda d: d.find_element("css selector", ".recording-filter input[value='yes']").click())
    # The hostile call's row: the one whose "from" is the markup, shown as text.
    row = ("Array.from(document.querySelectorAll('#calls-grid td[data-dash-column=\"from\"]'))"
           f".find(td => td.textContent === {json.dumps(HOSTILE_TEXT)})")
    for _ in range(20):  # the hostile call is recorded; page through to it
        if browser.execute_script(f"return !!{row}"):
            break
        change_and_wait(browser, "document.getElementById('calls-next').click()")
    assert _count(browser, "#calls-grid img, #calls-grid script") == 0
    assert browser.execute_script("return window.pwned === undefined && document.title === 'callstream'")
    change_and_wait(browser, f"{row}.click()")
    links = [a.get_attribute("href") for a in browser.find_elements("css selector", "#call-recordings a")]
    # Only the https URL is linked, through the audited route; the javascript: URL is shown as text.
    assert links == [f"{site.url}/recording/{HOSTILE_CALL}/1"]
    assert "javascript:alert(1)" in _text(browser, "#call-recordings")
    assert HOSTILE_TEXT in _text(browser, "#call-cdr")  # the markup in "from" is printed, not parsed
    assert browser.execute_script("return window.pwned === undefined")
    screenshot(browser, "dashboard-hostile-call")
    load(browser, site.url + "/spend")  # the hostile region tops the destinations: plotly shows it as text
    assert "<script>window.pwned=1</script>" in _text(browser, "#spend-destinations")
    assert _count(browser, ".js-plotly-plot img, .js-plotly-plot script, .js-plotly-plot a") == 0
    assert browser.execute_script("return window.pwned === undefined && document.title === 'callstream'")


def test_token_protects_the_dashboard_in_a_browser(warehouse, browser, tmp_path) -> None:
    settings = Settings.from_env({"CALLSTREAM_WAREHOUSE": str(warehouse), "CALLSTREAM_DASH_TOKEN": "s3cret-token",
                                  "CALLSTREAM_ACCOUNTS": str(tmp_path / "accounts.sqlite")})
    with Reader(warehouse) as reader, ServerThread(create_app(settings, reader)) as server:
        browser.get(server.url + "/")  # a browser without the token is sent to the login form
        assert browser.current_url.startswith(server.url + "/login")
        assert browser.find_elements("id", "login-name") and "calls-grid" not in browser.page_source
        load(browser, server.url + "/spend?token=s3cret-token")
        assert browser.current_url == server.url + "/spend" and not browser_errors(browser)
        load(browser, server.url + "/calls")  # the cookie carries the token from now on
        assert _count(browser, ROWS) == 50
