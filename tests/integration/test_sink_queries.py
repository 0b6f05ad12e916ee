"""warehouse.queries against a small real warehouse, checked with plain Python over the same CDRs."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from streams.domain.alerts import Alert, alert_to_json
from streams.domain.cdr_json import cdr_to_json
from streams.domain.dlq import encode_dlq
from streams.domain.events import Rejection
from streams.simulator import generate_all
from tests.integration.sink_data import Feed
from tests.unit.warehouse_samples import CDR, T0
from warehouse import compaction, dashboard_queries, queries
from warehouse.decode import RawBatch, decode_events
from warehouse.filters import CallFilter
from warehouse.reader import Reader
from warehouse.sources import aggregate_source, recordings_source, user_spend_source
from warehouse.writer import Batch, Writer

pytestmark = pytest.mark.integration

HOUR = 3_600_000_000
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def _calls() -> list[bytes]:
    """60 varied calls in October and November (plus two incomplete ones), as CDR JSON."""
    rng = random.Random(4)
    docs = []
    for n in range(60):
        # A third in October: a cold partition, read from its stored rollup.
        start = T0 - 4 * 24 * HOUR + n * 3 * HOUR + rng.randrange(HOUR) - (31 * 24 * HOUR if n < 20 else 0)
        line = rng.choice(["rented", "operator", "sip", "internal"])
        status = rng.choice(["answered", "answered", "missed", "busy"])
        talk = Decimal(rng.randrange(0, 600_000)) / 1000 if status == "answered" else Decimal("0.000")
        recorded = status == "answered" and line != "internal" and n % 3 != 0
        controller = rng.choice(["checked"] * 4 + ["bypassed", "none"])
        cdr = CDR._replace(call_id=f"c{n:02d}", portal_id=f"p-{n % 3}", line=line, status=status,
                      started_at_us=start, answered_at_us=start + HOUR // 100 if status == "answered" else None,
                      ended_at_us=start + HOUR // 10, hangup_cause="busy" if status == "busy" else "normal",
                      talk_s=talk, user_id=f"u-{n % 5}", controller=controller,
                      controller_result=None if controller == "none" else "ok",
                      region=rng.choice(["Russia mobile", "Kazakhstan", "SIP trunk (own carrier)"]),
                      currency="RUB", cost=(Decimal(rng.randrange(0, 5000)) / 100).quantize(Decimal("0.01")),
                      to=f"+7916{n:07d}", recording_urls=(f"https://r/{n}.mp3",) if recorded else (),
                      recording_bytes=int(talk * 16000) if recorded else 0)
        if line == "internal":  # contract, Rating: no tariff lookup, nothing billed
            cdr = cdr._replace(region="internal", rate_per_min=None, currency=None, billed_s=0,
                               cost=Decimal("0.00"))
        docs.append(cdr_to_json(cdr, 1))
    for n in range(2):
        docs.append(cdr_to_json(CDR._replace(call_id=f"x{n}", started_at_us=None, status="incomplete"), 1))
    return docs


VALUES = _calls()
CALLS = [{**doc, "cost": Decimal(doc["cost"])} for doc in (json.loads(v, parse_float=Decimal) for v in VALUES)]


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    root = tmp_path_factory.mktemp("queries") / "warehouse"
    values = VALUES
    with Writer(root) as writer:
        feed = Feed(writer)
        feed.send("cdrs", *values[:40])
        compaction.major(writer, "cdrs")
        feed.send("cdrs", *values[40:])
        _events_alerts_dlq(writer, feed)
    with Reader(root) as handle:
        yield handle


def _events_alerts_dlq(writer: Writer, feed: Feed) -> None:
    messages, _ = generate_all("timeline", 1, 1, T0)
    raw = RawBatch("call-events")
    for offset, message in enumerate(messages + messages[:2]):  # two redelivered copies
        raw.add(0, offset, 4_102_444_800_000, message.key, message.value)  # after every ts
    writer.write(Batch({"events": decode_events(raw)}, {"call-events": {0: len(raw)}}))
    for n in range(4):
        alert = Alert(f"license_error:c{n:02d}", "license_error", f"p-{n % 2}", f"c{n:02d}", T0 + n * HOUR, {})
        feed.send("alerts", alert_to_json(alert))
    withdrawn = Alert("extranet_call:c09", "extranet_call", "p-0", "c09", T0 - HOUR, {"state": "retracted"})
    feed.send("alerts", alert_to_json(withdrawn))
    feed.send("dlq", *(encode_dlq(Rejection(reason, "e"), "call-events", 0, n, b"{}")
                       for n, reason in enumerate(["not_json", "not_json", "unknown_type"])))


def _day(doc) -> date | None:
    return datetime.fromisoformat(doc["started_at"]).date() if doc["started_at"] else None


def _match(flt: CallFilter):
    start = flt.start and datetime.combine(flt.start, datetime.min.time(), UTC)
    end = flt.end and datetime.combine(flt.end, datetime.min.time(), UTC)

    def ok(doc) -> bool:
        at = doc["started_at"] and datetime.fromisoformat(doc["started_at"])
        if (start or end) and not at:
            return False
        return ((not start or at >= start) and (not end or at < end)
                and (not flt.portals or doc["portal_id"] in flt.portals)
                and (not flt.lines or doc["line"] in flt.lines)
                and (flt.has_recording is None or (doc["recording_bytes"] > 0) == flt.has_recording)
                and (flt.min_talk_s is None or (doc["talk_s"] is not None and doc["talk_s"] >= flt.min_talk_s))
                and (not flt.number or any(flt.number in (doc[k] or "") for k in ("from", "to"))))
    return [d for d in CALLS if ok(d)]


FILTERS = [CallFilter(), CallFilter(start=date(2026, 10, 22), end=date(2026, 11, 25)),
           CallFilter(portals=("p-1", "p-2"), lines=("rented", "sip")),
           CallFilter(has_recording=True, min_talk_s=Decimal("100")), CallFilter(number="0000012")]


@pytest.mark.parametrize("flt", FILTERS)
def test_call_count_and_detail_pages(reader, flt):
    expected = _match(flt)
    assert queries.call_count(reader, flt) == len(expected)
    newest_first = sorted(expected, key=lambda d: (d["started_at"] is not None, d["started_at"] or "", d["call_id"]),
                          reverse=True)
    pages = [queries.call_detail(reader, flt, page=p, page_size=7) for p in range(10)]
    assert [c for page in pages for c in page["call_id"]] == [d["call_id"] for d in newest_first]
    by_talk = queries.call_detail(reader, flt, sort="talk_s", descending=False, page_size=100)
    assert list(by_talk["call_id"]) == [d["call_id"] for d in sorted(
        expected, key=lambda d: (d["talk_s"] is None, d["talk_s"] or 0, d["call_id"]))]


@pytest.mark.parametrize("flt", FILTERS[:3])
@pytest.mark.parametrize("sort", ["cost", "talk_s", "region", "ended_at"])
@pytest.mark.parametrize("descending", [True, False])
def test_detail_pages_in_any_sort_order(reader, flt, sort, descending):
    """Every page of a sort other than newest-first (its rows bounded first by the page's last
    value: queries._threshold) is the slice of the calls sorted in Python: ties by call_id in
    the same direction, calls without a value last either way."""
    expected = _match(flt)

    def key(doc):
        value = doc[sort]
        if sort == "ended_at" and value is not None:
            value = datetime.fromisoformat(value)
        return value

    valued = sorted((d for d in expected if key(d) is not None), key=lambda d: (key(d), d["call_id"]),
                    reverse=descending)
    unvalued = sorted((d for d in expected if key(d) is None), key=lambda d: d["call_id"], reverse=descending)
    want = [d["call_id"] for d in valued + unvalued]
    got = [c for p in range(len(want) // 6 + 2)
           for c in queries.call_detail(reader, flt, sort=sort, descending=descending, page=p, page_size=6)["call_id"]]
    assert got == want and len(want) > 6


def test_detail_columns_are_typed(reader):
    row = queries.call_detail(reader, page_size=1).iloc[0]
    assert isinstance(row["cost"], Decimal) and isinstance(row["talk_s"], Decimal)
    assert str(row["started_at"].tz) == "UTC"
    with pytest.raises(ValueError, match="cannot sort"):
        queries.call_detail(reader, sort="cost; DROP TABLE cdrs")


def test_cdr_by_id_and_timeline(reader):
    cdr = queries.cdr_by_id(reader, "c07")
    assert cdr["portal_id"] == "p-1" and cdr["cost_text"] == str(CALLS[7]["cost"])
    assert queries.cdr_by_id(reader, "nope") is None
    messages, _ = generate_all("timeline", 1, 1, T0)
    call_id = json.loads(messages[0].value)["call_id"]
    timeline = queries.call_timeline(reader, call_id)
    assert len(timeline) == len(messages) and list(timeline["ts"]) == sorted(timeline["ts"])
    assert timeline.iloc[0]["type"] == "call.started"


@pytest.mark.parametrize("flt", FILTERS[:3])
def test_spend_by_region_day_line(reader, flt):
    expected: dict = defaultdict(lambda: [0, 0, Decimal(0)])
    for d in _match(flt):
        cell = expected[(_day(d), d["region"], d["line"], d["currency"])]
        cell[0] += 1
        cell[1] += d["billed_s"]
        cell[2] += d["cost"]
    frame = queries.spend_by_region_day_line(reader, flt)
    got = {(r.day, r.region, r.line, None if pd.isna(r.currency) else r.currency): [r.calls, r.billed_s, r.cost]
           for r in frame.itertuples()}
    assert got == dict(expected)


def test_recording_bytes_daily_and_cumulative(reader):
    flt = CallFilter(start=date(2026, 11, 23), end=date(2026, 11, 26))
    before = sum(d["recording_bytes"] for d in CALLS if d["started_at"] and _day(d) < date(2026, 11, 23))
    frame = queries.recording_bytes_daily(reader, flt)
    daily: dict = defaultdict(int)
    for d in _match(flt):
        if d["recording_bytes"]:
            daily[_day(d)] += d["recording_bytes"]
    assert dict(zip(frame["day"], frame["bytes"])) == dict(daily)
    assert list(frame["cumulative_bytes"]) == [before + sum(list(daily.values())[:i + 1])
                                               for i in range(len(daily))]
    by_user = queries.recording_bytes_by(reader, "user", flt, top=2)
    totals: dict = defaultdict(int)
    for d in _match(flt):
        totals[d["user_id"]] += d["recording_bytes"]
    top = sorted(totals, key=lambda u: (-totals[u], u))[:2]
    assert set(by_user["key"]) == set(top)
    last = by_user.groupby("key")["cumulative_bytes"].max()
    for user in top:
        stored = sum(d["recording_bytes"] for d in CALLS if d["user_id"] == user and d["started_at"]
                     and _day(d) < date(2026, 11, 26))
        assert last[user] == stored
    with pytest.raises(ValueError):
        queries.recording_bytes_by(reader, "region")


def test_bypass_rate_and_asr_acd(reader):
    frame = queries.bypass_rate_by_portal(reader).set_index("portal_id")
    for portal in ("p-0", "p-1", "p-2"):
        docs = [d for d in CALLS if d["portal_id"] == portal]
        bypassed = sum(d["controller"] == "bypassed" for d in docs)
        assert (frame.loc[portal, "calls"], frame.loc[portal, "bypassed"]) == (len(docs), bypassed)
        assert frame.loc[portal, "bypass_rate"] == pytest.approx(bypassed / len(docs))
    asr = queries.asr_acd_by_line(reader).set_index("line")
    for line in ("rented", "operator", "sip", "internal"):
        docs = [d for d in CALLS if d["line"] == line and d["status"] != "incomplete"]
        answered = [d for d in docs if d["status"] == "answered"]
        assert asr.loc[line, "asr"] == pytest.approx(len(answered) / len(docs))
        acd = (sum(d["talk_s"] for d in answered) / len(answered)).quantize(Decimal("0.001"))
        assert abs(asr.loc[line, "acd_s"] - acd) <= Decimal("0.001")


def test_kpis(reader):
    figures = queries.kpis(reader, CallFilter(portals=("p-0",)), now=NOW)
    docs = [d for d in CALLS if d["portal_id"] == "p-0"]
    today = [d for d in docs if d["started_at"] and _day(d) == NOW.date()]
    assert figures["calls"] == sum(d["status"] != "incomplete" for d in docs)
    assert figures["bypassed"] == sum(d["controller"] == "bypassed" for d in docs)
    assert figures["spend_today"] == ({"RUB": sum(d["cost"] for d in today if d["currency"])}
                                      if any(d["currency"] for d in today) else {})
    assert figures["spend_month"]["RUB"] == sum(d["cost"] for d in docs if d["currency"] and d["started_at"]
                                                and date(2026, 11, 1) <= _day(d) <= NOW.date())
    assert figures["recording_bytes"] == sum(d["recording_bytes"] for d in docs)


def test_alerts_dlq_and_freshness(reader):
    live = [f"license_error:c{n:02d}" for n in (3, 2, 1, 0)]
    assert list(queries.alerts(reader)["alert_id"]) == live + ["extranet_call:c09"]
    assert list(queries.alerts(reader, live_only=True)["alert_id"]) == live
    assert len(queries.alerts(reader, portals=("p-1",), start=datetime(2026, 11, 24, 11, tzinfo=UTC))) == 2
    counts = queries.dlq_counts(reader)
    assert dict(zip(counts["reason"], counts["count"])) == {"not_json": 2, "unknown_type": 1}
    assert len(queries.dlq_counts(reader, by_day=True)) == 2
    assert list(queries.dlq_examples(reader, "not_json")["src_offset"]) == [1, 0]
    fresh = queries.freshness(reader, now=NOW)
    assert fresh["seq"] >= 3 and fresh["newest"]["cdrs"] > fresh["newest"]["events"] - timedelta(days=30)
    assert fresh["age_s"] is not None


@pytest.mark.parametrize("flt", FILTERS[:3] + [CallFilter(start=date(2026, 11, 1), statuses=("answered",),
                                                          controllers=("checked", "none"))])
def test_the_rollup_answers_exactly_like_the_calls(reader, flt):
    raw = flt.replace(min_cost=0)  # a bound the rollup cannot express: forces the calls themselves
    assert aggregate_source(flt).table == "cdrs_daily" and aggregate_source(raw).table == "cdrs"
    for query in (queries.spend_by_region_day_line, queries.recording_bytes_daily, queries.bypass_rate_by_portal,
                  queries.asr_acd_by_line, lambda r, f: queries.recording_bytes_by(r, "portal", f),
                  lambda r, f: queries.recording_bytes_by(r, "user", f)):
        pd.testing.assert_frame_equal(query(reader, flt), query(reader, raw))
    assert queries.call_count(reader, flt) == queries.call_count(reader, raw)
    assert queries.kpis(reader, flt, now=NOW) == queries.kpis(reader, raw, now=NOW)


def test_recordings_per_user_come_from_their_rollup_when_the_filter_allows(reader):
    flt = CallFilter(start=date(2026, 10, 22), end=date(2026, 11, 26), portals=("p-1", "p-2"), users=("u-1",))
    assert recordings_source(flt).table == "recordings_daily"
    assert recordings_source(flt.replace(lines=("sip",), statuses=("answered",))).table == "recordings_daily"
    assert recordings_source(flt.replace(regions=("Kazakhstan",))).table == "cdrs"
    pd.testing.assert_frame_equal(queries.recording_bytes_by(reader, "user", flt),
                                  queries.recording_bytes_by(reader, "user", flt.replace(min_cost=0)))


NEW_YORK = CallFilter(start=datetime(2026, 10, 22, 4, tzinfo=UTC), end=datetime(2026, 11, 26, 5, tzinfo=UTC),
                      zone="America/New_York")


@pytest.mark.parametrize("flt", [CallFilter(), CallFilter(start=date(2026, 10, 22), end=date(2026, 11, 26)),
                                 CallFilter(portals=("p-1", "p-2")), CallFilter(users=("u-1", "u-2")),
                                 NEW_YORK, NEW_YORK.replace(portals=("p-1",), hourly=True)])
def test_spend_per_employee_comes_from_its_rollup_exactly(reader, flt):
    raw = flt.replace(min_cost=0)
    rollup = "user_spend_daily" if flt.zone == "UTC" else "user_spend_hourly"
    assert user_spend_source(flt).table == rollup and user_spend_source(raw).table == "cdrs"
    assert rollup in user_spend_source(flt, daily=True).table
    assert user_spend_source(flt.replace(lines=("sip",))).table == "cdrs"
    pd.testing.assert_frame_equal(dashboard_queries.top_users_by_cost(reader, flt, top=1000),
                                  dashboard_queries.top_users_by_cost(reader, raw, top=1000))
    assert len(dashboard_queries.top_users_by_cost(reader, flt, top=1000)) > 0
    daily = dashboard_queries.employee_spend_daily(reader, flt, top=1000)
    pd.testing.assert_frame_equal(daily, dashboard_queries.employee_spend_daily(reader, raw, top=1000))
    assert len(daily) > 0 and all(isinstance(c, Decimal) for c in daily["cost"])


@pytest.mark.parametrize("recorded", [True, False])
@pytest.mark.parametrize("flt", [CallFilter(), CallFilter(start=date(2026, 10, 22), end=date(2026, 11, 26)),
                                 CallFilter(portals=("p-1",), lines=("rented", "operator"))])
def test_counts_with_or_without_a_recording_come_from_the_rollup_exactly(reader, flt, recorded):
    flt = flt.replace(has_recording=recorded)
    expected = sum(1 for c in CALLS if (c["recording_bytes"] > 0) == recorded
                   and (flt.start is None or (c["started_at"] and flt.start.isoformat() <= c["started_at"][:10]))
                   and (flt.end is None or (c["started_at"] and c["started_at"][:10] < flt.end.isoformat()))
                   and (not flt.portals or c["portal_id"] in flt.portals)
                   and (not flt.lines or c["line"] in flt.lines))
    assert queries.call_count(reader, flt) == queries.call_count(reader, flt.replace(min_cost=0)) == expected
