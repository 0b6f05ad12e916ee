"""A portal administrator forges what the browser sends and still gets nothing of another portal."""

from __future__ import annotations

import base64
import json

import pytest

from common.config import Settings
from dashboards.accounts import Store
from dashboards.app import create_app
from tests.integration.dashboard_support import build_warehouse
from warehouse.reader import Reader

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("scoping") / "warehouse"
    build_warehouse(root)
    return root


@pytest.fixture(scope="module")
def setup(root):
    settings = Settings.from_env({"CALLSTREAM_WAREHOUSE": str(root)})
    with Reader(root) as reader:
        portals = [p for (p,) in reader.read(lambda c: c.execute(
            "SELECT portal_id FROM cdrs GROUP BY 1 ORDER BY count(*) DESC").fetchall())]
        other_call = reader.read(lambda c: c.execute(
            "SELECT call_id FROM cdrs WHERE portal_id = ? ORDER BY len(recording_urls) DESC LIMIT 1",
            [portals[1]]).fetchall())[0][0]
        store = Store(settings.accounts_path)
        store.add("ann", "portal_admin", (portals[0],), "ann-password", listen=True)
        store.add("vic", "viewer", (portals[0],), "vic-password")
        store.add("ops", "operator", (), "ops-password", listen=True)
        app = create_app(settings, reader)
        yield app, portals, other_call, store


def _auth(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def _csv_portals(response) -> set[str]:
    lines = response.get_data(as_text=True).splitlines()
    return {line.split(",")[1] for line in lines[1:] if line}


def test_a_hand_written_q_on_the_download_gets_only_the_admins_portal(setup):
    app, portals, _call, store = setup
    client = app.server.test_client()
    mine, other = portals[0], portals[1]
    for q in ({"portals": [other]}, {"portals": [mine, other]}, {}, {"portals": other}):
        got = client.get("/download/calls.csv", query_string={"q": json.dumps({**q, "period": "365d"})},
                         headers=_auth("ann", "ann-password"))
        assert got.status_code == 200 and _csv_portals(got) <= {mine}
    everything = client.get("/download/calls.csv", query_string={"q": json.dumps({"period": "365d"})},
                            headers=_auth("ops", "ops-password"))
    assert {mine, other} <= _csv_portals(everything)
    viewer = client.get("/download/calls.csv", headers=_auth("vic", "vic-password"))
    assert viewer.status_code == 403
    entries = store.audit_log()
    assert entries[0]["user"] == "ops" and entries[0]["action"] == "csv_download"
    assert any(e["user"] == "ann" and other in e["detail"]["q"] for e in entries)  # who, what filter, when


def test_forged_callback_inputs_and_urls_show_nothing_of_another_portal(setup):
    app, portals, other_call, _store = setup
    client = app.server.test_client()
    other = portals[1]
    output = next(k for k in app.callback_map if k.startswith("..calls-table.children"))
    spec = app.callback_map[output]
    values = {"calls-portals.value": [other], "calls-dates.start_date": "2000-01-01",
              "calls-dates.end_date": "2100-01-01"}
    body = {"output": output,
            "outputs": [{"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1].split("@")[0]}
                        for o in output.strip(".").split("...")],
            "inputs": [{"id": i["id"], "property": i["property"], "value": values.get(f"{i['id']}.{i['property']}")}
                       for i in spec["inputs"]], "state": [], "changedPropIds": ["calls-portals.value"]}
    got = client.post("/_dash-update-component", json=body, headers=_auth("ann", "ann-password"))
    assert got.status_code == 200
    text = got.get_data(as_text=True)
    assert other_call not in text and f'"{other}"' not in text.replace(f'\\"{other}\\"', "")
    assert "No calls match these filters" in text
    as_ops = client.post("/_dash-update-component", json=body, headers=_auth("ops", "ops-password"))
    assert other in as_ops.get_data(as_text=True)
    # A call id of another portal in a URL: not found, and its recording is not opened.
    assert client.get(f"/recording/{other_call}/0", headers=_auth("ann", "ann-password")).status_code == 404
    assert client.get(f"/recording/{other_call}/0", headers=_auth("vic", "vic-password")).status_code == 403


def test_a_forged_row_click_opens_no_call_of_another_portal(setup):
    app, portals, other_call, _store = setup
    client = app.server.test_client()
    output = next(k for k in app.callback_map if k.startswith("calls-detail.children"))
    body = {"output": output, "outputs": {"id": "calls-detail", "property": "children"},
            "inputs": [{"id": "calls-open", "property": "data", "value": other_call}],
            "state": [], "changedPropIds": ["calls-open.data"]}
    got = client.post("/_dash-update-component", json=body, headers=_auth("ann", "ann-password"))
    text = got.get_data(as_text=True)
    assert got.status_code == 200 and "call-missing" in text and portals[1] not in text.replace(other_call, "")
    as_ops = client.post("/_dash-update-component", json=body, headers=_auth("ops", "ops-password"))
    assert "call-title" in as_ops.get_data(as_text=True) and portals[1] in as_ops.get_data(as_text=True)


def test_the_quality_page_of_a_portal_admin_shows_only_the_admins_portal(setup, root):
    from dashboards.access import acting_as
    from dashboards.accounts import User
    from dashboards.data import Context, Data
    from dashboards.pages import quality

    _app, portals, _call, _store = setup
    mine, other = portals[0], portals[1]
    with Reader(root) as reader:
        ctx = Context(Settings.from_env({"CALLSTREAM_WAREHOUSE": str(root)}), Data(reader))
        with acting_as(User("ann", "portal_admin", (mine,))):
            figures = [*quality.render(ctx, "365d", [other])[2:], *quality.render(ctx, "365d", None)[2:]]
    texts = json.dumps(figures, default=str)  # plotly.js JSON: every label, hover text and drill-down
    assert other not in texts and mine in texts
