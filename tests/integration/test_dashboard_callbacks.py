"""Every page's callback body, called as a function over a small real warehouse."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from dash import html, no_update

from common.config import Settings
from dashboards.app import create_app, freshness_state, route
from dashboards.data import Context, Data
from dashboards.pages import alerts, call_view, calls, overview, quality, recordings, spend
from tests.integration.dashboard_support import build_warehouse
from warehouse import queries
from warehouse.reader import Reader

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    root = tmp_path_factory.mktemp("dash-callbacks") / "warehouse"
    build_warehouse(root)
    settings = Settings.from_env({"CALLSTREAM_WAREHOUSE": str(root)})
    with Reader(root) as reader:
        yield Context(settings, Data(reader))


def _texts(component) -> list[str]:
    """Every string inside a component tree, in order."""
    if isinstance(component, str):
        return [component]
    children = getattr(component, "children", None)
    if children is None:
        return []
    if not isinstance(children, (list, tuple)):
        children = [children]
    return [text for child in children for text in _texts(child)]


def _all_cdrs(ctx) -> list[dict]:
    with ctx.data.reader.cursor() as con:
        return con.sql("SELECT * FROM cdrs").to_arrow_table().to_pylist()


def test_route_gives_each_page_and_a_not_found(ctx) -> None:
    for page in (overview, calls, spend, quality, recordings, alerts):
        shown = route(page.PATH, ctx)
        assert getattr(shown, "id", None) != "not-found", page.PATH
        assert page.TITLE in _texts(shown), page.PATH  # the page's own heading, not another page's
    assert "Not found" in _texts(route("/nope", ctx))


def test_freshness_and_data_stamp(ctx) -> None:
    text, css, seq = freshness_state(ctx, None)
    assert text.startswith("Updated") and "newest call" in text and css == "freshness fresh"
    assert seq == ctx.data.seq() and freshness_state(ctx, seq)[2] is no_update


def test_overview_cards(ctx) -> None:
    cards = overview.render(ctx, "30d", None)
    assert set(cards) == {card for card, _, _ in overview.CARDS}
    rows = [r for r in _all_cdrs(ctx) if r["status"] != "incomplete" and r["started_at"] is not None]
    assert cards["calls"][0] == f"{len(rows):,}".replace(",", " ")
    assert cards["asr"][0].endswith("%") and cards["storage"][0].endswith("iB")
    assert all(spark.startswith("data:image/svg+xml;base64,") for _, _, spark in cards.values())
    one = overview.render(ctx, "30d", [rows[0]["portal_id"]])
    assert int(one["calls"][0].replace(" ", "")) == sum(1 for r in rows if r["portal_id"] == rows[0]["portal_id"])


def test_call_table_pages_sorts_and_filters(ctx) -> None:
    table, summary, href, total = calls.render_table(ctx, {}, None, 0)[:4]
    assert total == queries.call_count(ctx.data.reader, calls.controls.call_filter({}, ctx.now().date()))
    assert summary.startswith(f"{total:,}".replace(",", " ") + " calls · page 1 of")
    assert table.id == "calls-grid" and len(table.data) == min(calls.PAGE_SIZE, total)
    assert [c["id"] for c in table.columns] == [c for c, _, _ in calls.COLUMNS]
    newest = sorted(_all_cdrs(ctx), key=lambda r: (r["started_at"] is not None, r["started_at"], r["call_id"]))[-1]
    assert table.data[0]["id"] == newest["call_id"]  # the row's id is its call: a click opens it
    last_page = (total - 1) // calls.PAGE_SIZE
    _, summary, _, _ = calls.render_table(ctx, {}, None, 10_000)[:4]  # clamped to the last page
    assert f"page {last_page + 1} of {last_page + 1}" in summary
    table, _, _, _ = calls.render_table(ctx, {}, {"column": "cost", "descending": True}, 0)[:4]
    assert table.sort_by == [{"column_id": "cost", "direction": "desc"}]  # the cost header shows the order
    assert table.columns[10]["name"] == "Cost" and table.data[0]["cost"].endswith(("RUB", "USD", "EUR"))
    answered = calls.render_table(ctx, {"statuses": ["answered"], "recording": "yes"}, None, 0)[:4]
    assert answered[3] == sum(1 for r in _all_cdrs(ctx) if r["status"] == "answered" and r["recording_bytes"] > 0)
    carried = json.loads(parse_qs(urlsplit(answered[2]).query)["q"][0])
    assert carried == {"recording": "yes", "statuses": ["answered"]}  # the download link carries the filter


def test_call_table_reports_a_bad_filter_instead_of_failing(ctx) -> None:
    table, summary, _, total = calls.render_table(ctx, {"min_cost": "lots"}, None, 0)[:4]
    assert summary == "Filter not applied" and total == 0 and "min_cost" in _texts(table)[0]


def test_number_search_finds_the_call(ctx) -> None:
    cdr = next(r for r in _all_cdrs(ctx) if (r["to"] or "").startswith("+") and r["started_at"])
    _, _, _, total = calls.render_table(ctx, {"number": cdr["to"][-7:]}, None, 0)[:4]
    assert total >= 1


def test_opened_call_shows_cdr_timeline_and_safe_recording(ctx) -> None:
    cdr = next(r for r in _all_cdrs(ctx) if r["recording_urls"])
    view = call_view.render(ctx, cdr["call_id"])
    texts = _texts(view)
    assert f"Call {cdr['call_id']}" in texts and "call started" in texts and "call ended" in texts, texts[:60]
    assert "talk, s" in texts and "hang-up cause" in texts and "voice server" in texts
    audio = [c for c in _walk(view) if isinstance(c, html.Audio)]
    links = [c for c in _walk(view) if isinstance(c, html.A)]
    # Recordings open through the audited route, never straight from the page.
    assert links and links[0].href == f"/recording/{quote(cdr['call_id'], safe='')}/0"
    assert links[0].rel.startswith("noopener")
    assert len(audio) == sum(1 for u in cdr["recording_urls"] if u.endswith((".mp3", ".wav")))
    assert "is not in the warehouse" in _texts(call_view.render(ctx, "no-such-call"))[0]


def _walk(component):
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children] if children is not None else []:
        yield from _walk(child)


def _is_figure(fig) -> bool:
    """A figure as the pages return it: plotly.js's plain JSON, which plotly.py accepts."""
    import plotly.graph_objects as go

    go.Figure(fig)  # raises on a property plotly does not know
    return isinstance(fig, dict) and isinstance(fig["data"], list) and "layout" in fig


def test_spend_page(ctx) -> None:
    totals, *figs = spend.render(ctx, "30d", None)
    assert len(figs) == len(spend.GRAPHS) and all(_is_figure(f) for f in figs)
    assert "RUB" in _texts(totals)
    employees, over_time = spend.render_employees(ctx, "30d", None)
    assert employees["data"] and employees["data"][0]["y"][0].startswith("u-") and over_time["data"]


def test_recordings_page(ctx) -> None:
    quota, *figs = recordings.render(ctx, "30d", None)
    used = sum(r["recording_bytes"] for r in _all_cdrs(ctx))
    assert quota.startswith(recordings.fmt.size(used) + " of 100.0 GiB used")
    assert "full in about" in quota  # the test calls recorded within the growth window
    assert len(figs) == len(recordings.GRAPHS) and all(_is_figure(f) for f in figs)
    by_user, top = recordings.render_consumers(ctx, "30d", None)
    assert by_user["data"] and "portal" in _texts(top) and "employee" in _texts(top)


def test_alerts_page(ctx) -> None:
    counts, dlq, timeline, outages, latest = alerts.render(ctx, "30d", None)
    assert "A call bypassed the licence Controller" in _texts(counts)
    assert {t["name"] for t in timeline["data"]} >= {"bypassed call", "outage (open)", "outage (resolved)"}
    assert "p-outage-a" in _texts(outages) and "p-outage-b" in _texts(outages)
    assert dlq["data"] and _texts(latest)
    only = alerts.render(ctx, "30d", ["p-outage-a"])
    assert "p-outage-b" not in _texts(only[3])


def test_csv_download_route_and_health(ctx) -> None:
    app = create_app(ctx.settings, ctx.data.reader, context=ctx)
    client = app.server.test_client()
    assert client.get("/healthz").get_data(as_text=True) == "ok\n"
    today = ctx.now().date()
    values = {"start": (today - timedelta(days=29)).isoformat(), "end": today.isoformat(), "statuses": ["answered"]}
    response = client.get("/download/calls.csv?q=" + quote(json.dumps(values)))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    lines = response.get_data(as_text=True).split("\r\n")
    assert lines[0].startswith("call_id,portal_id,started_at")
    assert all(",answered," in line for line in lines[1:] if line)
    assert client.get("/download/calls.csv?q=" + quote('{"min_cost": "x"}')).status_code == 400
    assert client.get("/download/calls.csv?q=not-json").status_code == 400
    assert client.get("/").status_code == 200


def test_every_page_renders_before_the_first_publish(tmp_path) -> None:
    """A dashboard started before the sink published anything says so, and no page fails."""
    settings = Settings.from_env({"CALLSTREAM_WAREHOUSE": str(tmp_path / "not-yet")})
    with Reader(settings.warehouse) as reader:
        empty = Context(settings, Data(reader))
        text, css, _ = freshness_state(empty, None)
        assert css == "freshness empty" and "is the sink running?" in text
        assert overview.render(empty, "30d", None)["calls"][0] == "0"
        for render in (spend.render, spend.render_employees, recordings.render, recordings.render_consumers,
                       alerts.render):
            render(empty, "30d", None)
        assert calls.render_table(empty, {}, None, 0)[1] .startswith("0 calls · page 1 of 1")
        assert "is not in the warehouse" in _texts(call_view.render(empty, "c-1"))[0]


def test_steady_reader_moves_to_new_data_at_most_once_per_interval(tmp_path) -> None:
    from dashboards.data import SteadyReader
    from tests.integration.dashboard_support import build_warehouse

    root = tmp_path / "warehouse"
    build_warehouse(root, calls=50)
    now = [1000.0]  # the reader's clock, moved by hand: a slow machine cannot stretch the interval
    with SteadyReader(root, min_interval_s=0.5, clock=lambda: now[0]) as reader:
        data = Data(reader)
        first = data.seq()
        assert data.get(queries.call_count) == data.get(queries.call_count) and data.hits == 1
        build_warehouse(root, calls=80, seed="more")  # a second publish: the writer adds a batch
        now[0] += 0.4
        assert data.seq() == first  # within the interval: still the snapshot in use
        now[0] += 0.2
        assert data.seq() > first and data.get(queries.call_count) > 50


def test_the_cdr_and_the_timeline_speak_russian(ctx) -> None:
    from dashboards.i18n import speaking

    cdr = next(r for r in _all_cdrs(ctx) if r["status"] == "answered" and r["direction"] == "inbound")
    with speaking("ru"):
        texts = _texts(call_view.render(ctx, cdr["call_id"]))
    for words in ("Звонок " + cdr["call_id"], "разговор, с", "причина завершения", "статус", "отвечен",
                  "входящий", "начало звонка", "звонок завершён", "голосовой сервер", "Хронология событий"):
        assert words in texts, (words, texts[:80])
    assert not {"talk_s", "hangup_cause", "call.started", "call.ended", "answered", "inbound"} & set(texts)


def test_the_call_table_speaks_russian_in_the_portals_zone(ctx) -> None:
    from dashboards.i18n import speaking

    with speaking("ru"):
        table, summary = calls.render_table(ctx, {}, {"column": "talk_s", "descending": True}, 0)[:2]
    names = {c["id"]: c["name"] for c in table.columns}
    assert names["started_at"] == "Начало" and names["talk_s"] == "Разговор" and names["cost"] == "Стоимость"
    assert summary.startswith("звонков: ") and "страница 1 из" in summary
    row = table.data[0]
    assert row["talk_s"].endswith(" с") and row["started_at"].endswith(" UTC")  # a Russian unit; the view's zone
    with speaking("en"):
        english = calls.render_table(ctx, {}, {"column": "talk_s", "descending": True}, 0)[0]
    assert english.data[0]["id"] == row["id"] and english.data[0]["talk_s"].endswith(" s")


def test_quality_page_shows_lines_bypasses_causes_and_missed_offers_each_drilling_to_its_calls(ctx) -> None:
    from dashboards.urlstate import drill

    table, lines, bypass, causes, missed = quality.render(ctx, "30d", None)
    assert {"ASR", "ACD"} <= set(_texts(table)) and any(t.endswith("%") for t in _texts(table))
    assert all(f["data"] for f in (lines, bypass, causes, missed))
    assert "rented number" in lines["data"][0]["y"] and "normal hang-up" in causes["data"][0]["y"]

    def opened(fig, n=0):
        return parse_qs(urlsplit(drill({"points": [{"customdata": fig["data"][0]["customdata"][n]}]},
                                       {"period": "30d"})).query)

    assert opened(bypass)["controllers"] == ["bypassed"] and len(opened(bypass)["portals"]) == 1
    assert opened(causes)["causes"] == [next(k for k in ("normal", "no_answer", "busy", "failed", "rejected",
                                                          "license_error") if causes["data"][0]["y"][0] in
                                               (quality.labels.value("hangup_cause", k),))]
    assert set(opened(missed)) == {"users", "portals"} and opened(lines)["lines"][0] in ("rented", "operator", "sip",
                                                                                        "internal")
    # Every cause counted adds up to every call of the period.
    total = calls.render_table(ctx, {"period": "30d"}, None, 0)[3]
    assert sum(int(float(t.replace(" ", ""))) for t in causes["data"][0]["text"]) == total
