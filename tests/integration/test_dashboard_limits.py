"""The dashboard against greedy and forged requests: limits, and 400 (never 500) for bad input.

Every test runs the real app (its Flask server through the test client, or a
waitress server on loopback) over a real warehouse in a temporary directory.
"""

from __future__ import annotations

import json
import re
import tempfile
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from common.config import Settings
from dashboards import download
from dashboards.app import create_app, open_reader
from dashboards.data import Context, Data
from tests.integration.dashboard_support import ServerThread, build_warehouse
from tests.integration.sink_data import Feed, cdr
from warehouse.export import export_to_file
from warehouse.reader import Reader
from warehouse.writer import Writer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dash-limits") / "warehouse"
    build_warehouse(root, calls=400)
    return root


def _app(root: Path, **env: str):
    settings = Settings.from_env({"CALLSTREAM_WAREHOUSE": str(root), **env})
    reader = Reader(root)
    app = create_app(settings, reader, context=Context(settings, Data(reader)))
    return app, reader


@pytest.fixture(scope="module")
def app(warehouse):
    app, reader = _app(warehouse)
    yield app
    reader.close()


@pytest.fixture
def client(app):
    return app.server.test_client()


def _q(values: dict) -> str:
    return "/download/calls.csv?q=" + quote(json.dumps(values))


def _month() -> dict:
    today = datetime.now(UTC).date()
    return {"start": (today - timedelta(days=29)).isoformat(), "end": today.isoformat()}


# --- the DuckDB of the dashboard ----------------------------------------------------------------

def test_the_dashboard_duckdb_has_a_memory_and_a_thread_limit(warehouse):
    settings = Settings.from_env({"CALLSTREAM_WAREHOUSE": str(warehouse), "CALLSTREAM_DASH_MEMORY_MB": "300",
                                  "CALLSTREAM_DASH_THREADS": "1"})
    with open_reader(settings) as reader, reader.cursor() as con:
        limit, threads, spill = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads'), "
            "current_setting('temp_directory')").fetchall()[0]
    assert limit == "300.0 MiB" and threads == 1 and spill  # spills to disk rather than failing
    default = Settings.from_env({"CALLSTREAM_WAREHOUSE": str(warehouse)})
    with open_reader(default) as reader, reader.cursor() as con:
        assert con.execute("SELECT current_setting('memory_limit')").fetchall() == [("1.0 GiB",)]


# --- /download/calls.csv ------------------------------------------------------------------------

def test_a_download_over_the_row_cap_is_refused_with_the_way_out(warehouse):
    app, reader = _app(warehouse, CALLSTREAM_DASH_DOWNLOAD_MAX_ROWS="50")
    try:
        client = app.server.test_client()
        response = client.get(_q(_month()))
        assert response.status_code == 400
        text = response.get_data(as_text=True)
        assert "at most 50" in text and "narrow the filter" in text and "callstream export" in text
        one_call = client.get(_q({**_month(), "number": "no such number"}))
        assert one_call.status_code == 200
    finally:
        reader.close()


def test_at_most_two_downloads_at_once(warehouse):
    app, reader = _app(warehouse, CALLSTREAM_DASH_DOWNLOADS="2")
    try:
        client = app.server.test_client()
        first, second = (client.get(_q(_month()), buffered=False) for _ in range(2))
        assert first.status_code == second.status_code == 200
        third = client.get(_q(_month()))
        assert third.status_code == 429 and int(third.headers["Retry-After"]) > 0
        assert "downloads at once" in third.get_data(as_text=True)
        first.close()
        fourth = client.get(_q(_month()))
        assert fourth.status_code == 200
        assert second.get_data().startswith(b"call_id,portal_id,")  # the held one still completes
        second.close()
    finally:
        reader.close()


def test_a_download_is_streamed_in_chunks_byte_for_byte_the_export(tmp_path, monkeypatch):
    root = tmp_path / "warehouse"
    with Writer(root) as writer:
        start = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1e6)
        Feed(writer).send("cdrs", *(cdr(f"c-{n:05d}", 1, start + n * 3_600_000_000 // 40) for n in range(3000)))
    monkeypatch.setattr(download, "CHUNK_ROWS", 200)  # ~25 chunks of whole days
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    app, reader = _app(root, CALLSTREAM_DASH_DOWNLOADS="1")
    try:
        client = app.server.test_client()
        response = client.get(_q({"start": "2026-11-01", "end": "2026-11-30"}), buffered=False)
        assert response.status_code == 200 and response.is_streamed
        assert "Content-Length" not in response.headers
        stream = iter(response.response)
        body = next(stream)
        assert [p.name for p in scratch.iterdir()][0].startswith("callstream-download-")  # one chunk at a time:
        assert len(list(next(scratch.iterdir()).iterdir())) == 1  # the file being sent
        body += b"".join(stream)
        # Sent to the end: the scratch directory is gone and the slot is free, even before close().
        assert list(scratch.iterdir()) == []
        assert client.get(_q({"start": "2026-11-01", "end": "2026-11-02"})).status_code == 200
        response.close()
        expected = tmp_path / "export.csv"
        export_to_file(reader, expected, datetime(2026, 11, 1, tzinfo=UTC),
                       datetime(2026, 12, 1, tzinfo=UTC))
        assert body == expected.read_bytes() and body.count(b"\r\n") == 3001
    finally:
        reader.close()


def test_a_download_through_a_real_server_streams_without_a_length(warehouse):
    app, reader = _app(warehouse)
    try:
        with ServerThread(app) as server, urllib.request.urlopen(server.url + _q(_month()), timeout=30) as reply:
            assert reply.status == 200 and reply.headers.get("Content-Length") is None
            assert reply.headers.get("Transfer-Encoding") == "chunked"
            assert reply.read().startswith(b"call_id,portal_id,started_at")
    finally:
        reader.close()


BAD_QUERIES = {
    "not JSON": "/download/calls.csv?q=not-json",
    "not an object": _q(["start"]),
    "deeply nested": "/download/calls.csv?q=" + "[" * 50_000 + "]" * 50_000,
    "no such day": _q({"start": "2026-13-45", "end": "2026-11-30"}),
    "a number for a day": _q({"start": 20261101, "end": "2026-11-30"}),
    "beyond the calendar": _q({"start": "9999-12-30", "end": "9999-12-31"}),
    "inverted": _q({"start": "2026-11-30", "end": "2026-11-01"}),
    "a list for a period": _q({"period": ["30d"]}),
    "a list for recording": _q({"recording": ["yes"]}),
    "a number for a number search": _q({"number": 5}),
    "a huge bound": _q({"min_cost": "1e400"}),
    "a negative bound": _q({"max_talk_s": -1}),
    "a bound of the wrong type": _q({"max_talk_s": {"x": 1}}),
    "a list of numbers": _q({"portals": [1, 2]}),
    "too many values": _q({"portals": [f"p-{n}" for n in range(1200)]}),
    "a very long name": _q({"portals": ["p" * 5000]}),
    "an oversized query string": "/download/calls.csv?q=" + quote(json.dumps({"number": "1"})) + "&x=" + "a" * 40_000,
}


@pytest.mark.parametrize("name", sorted(BAD_QUERIES))
def test_every_malformed_download_is_a_400_with_a_reason(client, name):
    response = client.get(BAD_QUERIES[name])
    assert response.status_code == 400, (name, response.status_code, response.get_data(as_text=True)[:300])
    text = response.get_data(as_text=True)
    assert response.mimetype == "text/plain" and text.strip() and "Traceback" not in text


def test_an_oversized_query_string_is_refused_on_every_route(client):
    assert client.get("/calls?x=" + "a" * 40_000).status_code == 400
    assert client.get("/healthz").status_code == 200


# --- forged Dash callback requests --------------------------------------------------------------

def _callback(client, app, output: str, values: dict, changed: str | None = None, state: dict | None = None):
    """POST one callback the way the browser does; ``values``/``state``: "id.property" -> value."""
    output = next(k for k in app.callback_map if k.startswith(output))  # allow_duplicate adds a suffix
    spec = app.callback_map[output]

    def items(specs, given):
        out = []
        for item in specs:
            key = f"{item['id']}.{item['property']}"
            value = given.get(key)
            out.append(value if isinstance(value, list) and item["id"].startswith("{")
                       else {"id": item["id"], "property": item["property"], "value": value})
        return out

    outputs = [{"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]}
               for o in output.strip(".").split("...")]
    body = {"output": output, "outputs": outputs if output.startswith("..") else outputs[0],
            "inputs": items(spec["inputs"], values), "state": items(spec.get("state", []), state or {}),
            "changedPropIds": [changed] if changed else []}
    return client.post("/_dash-update-component", json=body)


TABLE = ("..calls-table.children...calls-summary.children...calls-download.href...calls-count.data"
         "...calls-download-excel.href...url-sync.search@")


@pytest.mark.parametrize("page", ["abc", -5, 10**30, 2.5, True, {"x": 1}, [1]])
def test_a_forged_page_number_falls_back_to_a_real_page(client, app, page):
    response = _callback(client, app, TABLE, {"calls-page.data": page, "calls-sort.data": None},
                         changed="calls-page.data")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    shown, pages = map(int, re.search(r"calls · page (\d+) of (\d+)", response.get_data(as_text=True)).groups())
    assert shown == (pages if page == 10**30 else 1)  # far past the end: the last page


@pytest.mark.parametrize("sort", [{"column": "nope", "descending": True}, {"column": "1; DROP TABLE cdrs"},
                                  "started_at", {"descending": "yes"}, [1, 2]])
def test_a_forged_sort_falls_back_to_the_default_order(client, app, sort):
    response = _callback(client, app, TABLE, {"calls-sort.data": sort, "calls-page.data": 0},
                         changed="calls-sort.data")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert "calls · page 1 of" in response.get_data(as_text=True)


@pytest.mark.parametrize("sort_by", [[{"column_id": "nope", "direction": "asc"}], "cost", [1, 2],
                                     [{"column_id": "cost"}, {"column_id": "talk_s"}], {"column_id": "cost"}])
def test_a_forged_sort_header_click_changes_nothing(client, app, sort_by):
    response = _callback(client, app, "calls-sort.data", {"calls-grid.sort_by": sort_by},
                         changed="calls-grid.sort_by",
                         state={"calls-sort.data": {"column": "started_at", "descending": True}})
    assert response.status_code in (200, 204), response.get_data(as_text=True)[:300]
    assert response.status_code == 204 or json.loads(response.get_data())["response"] == {}  # no update


def test_a_header_click_sorts_by_its_column(client, app):
    clicked = [{"column_id": "cost", "direction": "asc"}]  # the table proposes ascending
    response = _callback(client, app, "calls-sort.data", {"calls-grid.sort_by": clicked},
                         changed="calls-grid.sort_by",
                         state={"calls-sort.data": {"column": "started_at", "descending": True}})
    assert json.loads(response.get_data())["response"]["calls-sort"]["data"] == {"column": "cost", "descending": True}


def test_forged_pager_and_row_clicks_do_not_fail(client, app):
    pager = _callback(client, app, "calls-page.data", {"calls-next.n_clicks": 1},
                      changed="calls-next.n_clicks", state={"calls-page.data": "abc", "calls-count.data": "lots"})
    assert pager.status_code == 200 and json.loads(pager.get_data())["response"]["calls-page"]["data"] == 0
    for clicked in (["not", "a", "string"], "x" * 10_000, {"row_id": "c-1"}, None, 5):
        opened = _callback(client, app, "calls-detail.children", {"calls-open.data": clicked},
                           changed="calls-open.data")
        assert opened.status_code in (200, 204), opened.get_data(as_text=True)[:300]
        assert opened.status_code == 204 or json.loads(opened.get_data())["response"] == {}  # nothing opened
    users = _callback(client, app, "calls-users.options", {"calls-users.search_value": 42},
                      state={"calls-users.value": "u-1"})
    assert users.status_code == 200, users.get_data(as_text=True)[:300]


@pytest.mark.parametrize("period, portals", [(["30d"], None), ("30d", 5), ("30d", [1, 2]), ({"a": 1}, "p-1")])
def test_forged_page_filters_fall_back(client, app, period, portals):
    overview = next(k for k in app.callback_map if k.startswith("..kpi-calls-value.children"))
    for key, prefix in ((overview, "ov"), (next(k for k in app.callback_map if k.startswith("..al-counts")), "al")):
        response = _callback(client, app, key, {"seq.data": 1, f"{prefix}-period.value": period,
                                                f"{prefix}-portals.value": portals})
        assert response.status_code == 200, response.get_data(as_text=True)[:300]


def test_a_request_for_a_callback_that_runs_in_the_browser_is_a_400(client, app):
    """The data stamp's hold (dashboards/live.py) is a clientside callback: the server has no function
    for it, and a forged request for its output is refused, not a KeyError (HTTP 500)."""
    response = _callback(client, app, "seq.data", {"seq-next.data": 3, "tick.n_intervals": 1},
                         changed="tick.n_intervals", state={"seq.data": 1})
    assert response.status_code == 400, response.get_data(as_text=True)[:300]


@pytest.mark.parametrize("body", [b"{}", b"[]", b'{"output": "nope.children"}',
                                  b'{"output": "calls-page.data", "inputs": "x"}',
                                  b'{"output": "calls-page.data", "inputs": [], "state": []}', b"\xff"])
def test_a_malformed_callback_request_is_a_400(client, body):
    response = client.post("/_dash-update-component", data=body, content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)[:300]


def test_an_oversized_callback_body_is_refused(client):
    response = client.post("/_dash-update-component", data=b"[" + b"1," * 3_000_000 + b"1]",
                           content_type="application/json")
    assert response.status_code == 413
