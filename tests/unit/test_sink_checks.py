"""The sink refuses forged CDRs and alerts: each becomes a ``rejects`` row with its reason.

Issue 12, finding 5: anyone who can write ``cdrs`` could put ``=HYPERLINK(...)``
or ``@SUM(...)`` into the warehouse and the billing CSV, or a negative cost.
"""

from __future__ import annotations

import json

import orjson
import pytest

from streams.domain.alerts import Alert, alert_to_json
from streams.domain.cdr_json import cdr_to_json
from tests.unit.warehouse_samples import CDR, T0
from warehouse import duck
from warehouse.batch import raw_table
from warehouse.decode import RawBatch, decode_buffers, decode_json
from warehouse.decode_checked import _STRUCTURES

pytestmark = pytest.mark.unit

LINK = '=HYPERLINK("http://x","y")'
GOOD_CDR = orjson.loads(cdr_to_json(CDR, 1))
GOOD_ALERT = orjson.loads(alert_to_json(Alert("controller_bypassed:c-1", "controller_bypassed", "p-1", "c-1",
                                              T0, {"reason": "timeout"})))
OUTAGE = orjson.loads(alert_to_json(Alert("controller_outage:p-1:2026-11-24T10:35:30.123456Z",
                                          "controller_outage", "p-1", None, T0,
                                          {"state": "open", "threshold_calls": 5})))


@pytest.fixture
def con():
    connection = duck.connect()
    yield connection
    connection.close()


def _batch(topic: str, *messages: tuple[bytes | None, bytes | None]) -> RawBatch:
    raw = RawBatch(topic)
    for offset, (key, value) in enumerate(messages):
        raw.add(2, 40 + offset, 1_795_430_130_000, key, value)
    return raw


def _cdr(**changes) -> bytes:
    return orjson.dumps({**GOOD_CDR, **changes})


def _alert(base: dict = GOOD_ALERT, **changes) -> bytes:
    return orjson.dumps({**base, **changes})


FORGED_CDRS = [
    *[(dict(region=text), "bad_field:region") for text in
      (LINK, "@SUM(1)", "+1+1", "-1+1", "\t=1+1", "\r=1+1", "\n=1+1", "nul\x00",
       "x" * 65, "", 12, ["list"])],
    *[({name: LINK}, f"bad_field:{name}") for name in
      ("call_id", "portal_id", "direction", "line", "from", "to", "shown_number", "user_id", "status",
       "hangup_cause", "forwarded_to", "controller", "controller_result", "currency", "rate_per_min",
       "cost", "started_at", "answered_at", "ended_at")],
    *[({name: "@SUM(1)"}, f"bad_field:{name}") for name in ("user_id", "from", "to", "currency")],
    (dict(line_number="two\nlines"), "bad_field:line_number"),
    (dict(line_number="x" * 65), "bad_field:line_number"),
    *[(dict(cost=cost), "bad_field:cost") for cost in ("-1.53", "1.534", "1.5", 1.53, "01.53", "1e3", None)],
    *[(dict(rate_per_min=rate), "bad_field:rate_per_min") for rate in ("-1.50", "1e3", 1.5, "1,50", " 1.50")],
    *[(dict(billed_s=billed), "bad_field:billed_s") for billed in (-1, 61.5, "61", True, None)],
    *[(dict(version=version), "bad_field:version") for version in (0, "2", 1.0, True)],
    *[(dict(talk_s=talk), "bad_field:talk_s") for talk in (-1.0, 60.3335, "60.333", 1e12, True)],
    (dict(recording_s=None), "bad_field:recording_s"),
    *[(dict(started_at=ts), "bad_field:started_at") for ts in
      ("2026-11-24T10:35:30Z", "2026-11-24T10:35:30.123+00:00", "2026-02-30T10:35:30.123Z",
       "2026-11-24 10:35:30.123Z", "2026-11-24T24:00:00.000Z")],
    *[(dict(recording_urls=urls), "bad_field:recording_urls") for urls in
      ([LINK], ["javascript:alert(1)"], [f"https://r.example/{n}" for n in range(101)],
       ["https://r.example/" + "a" * 3000], ["https://r.example/1", "https://r.example/1"],
       "https://r.example/1", [1], ["https://r.example/a b"])],
    *[(dict(recording_bytes=n), "bad_field:recording_bytes") for n in (-1, 2**63, 1.5)],
    (dict(events=0), "bad_field:events"),
    (dict(queue_attempts=2**31), "bad_field:queue_attempts"),
    (dict(extranet="yes"), "bad_field:extranet"),
    # Facts the contract states between fields.
    (dict(status="missed"), "bad_field:status"),
    (dict(answered_at=None), "bad_field:status"),
    (dict(answered_at=None, talk_s=0.0, hangup_cause="busy", status="missed"), "bad_field:status"),
    (dict(started_at=None), "bad_field:started_at"),
    (dict(controller="none"), "bad_field:controller_result"),
    (dict(controller="checked", controller_result=None), "bad_field:controller_result"),
    (dict(rate_per_min=None), "bad_field:cost"),
    (dict(rate_per_min=None, billed_s=0, cost="0.00"), "bad_field:currency"),
    (dict(currency=None), "bad_field:currency"),
    (dict(region=None), "bad_field:region"),
    (dict(line="internal", direction="internal"), "bad_field:region"),
]


@pytest.fixture(scope="module")
def forged_cdrs():
    """Every forged CDR decoded in one batch behind a valid one: (stored offsets, reject by offset)."""
    connection = duck.connect()
    try:
        values = [cdr_to_json(CDR, 1), *(_cdr(**changes) for changes, _ in FORGED_CDRS)]
        rows, rejects = decode_json(connection, "cdrs", _batch("cdrs", *((b"c-1", v) for v in values)))
    finally:
        connection.close()
    return rows.column("kafka_offset").to_pylist(), {r["kafka_offset"]: r for r in rejects.to_pylist()}


@pytest.mark.parametrize("n", range(len(FORGED_CDRS)), ids=[r for _, r in FORGED_CDRS])
def test_a_forged_cdr_is_rejected_with_its_reason(forged_cdrs, n):
    stored, rejects = forged_cdrs
    changes, reason = FORGED_CDRS[n]
    assert stored == [40]
    reject = rejects[41 + n]
    assert (reject["reason"], reject["topic"], reject["kafka_partition"]) == (reason, "cdrs", 2), changes
    assert reject["raw"] == _cdr(**changes) and reject["raw_bytes"] == len(_cdr(**changes))
    assert reject["error"]


def test_a_missing_field_is_named():
    doc = dict(GOOD_CDR)
    del doc["cost"]
    con = duck.connect()
    [reject] = decode_json(con, "cdrs", _batch("cdrs", (b"c-1", orjson.dumps(doc))))[1].to_pylist()
    assert reject["reason"] == "missing_field:cost"


@pytest.mark.parametrize("value, reason", [
    (None, "not_json"), (b"not json", "not_json"), (b"\xff\xfe{}", "not_json"), (b"[1, 2]", "not_object"),
    (_cdr(recording_urls=["https://r.example/" + "a" * 2000] * 5000), "too_large"),
])
def test_what_is_not_a_cdr_object_is_rejected(con, value, reason):
    [reject] = decode_json(con, "cdrs", _batch("cdrs", (b"c-1", value)))[1].to_pylist()
    assert reject["reason"] == reason
    if value is not None:
        assert reject["raw"] == value[:65536] and reject["raw_bytes"] == len(value)


def test_the_raw_value_is_kept_up_to_64_kib(con):
    value = _cdr(region=LINK, padding="p" * 200_000)
    [reject] = decode_json(con, "cdrs", _batch("cdrs", (b"c-1", value)))[1].to_pylist()
    assert reject["raw"] == value[:65536] and reject["raw_bytes"] == len(value)
    assert reject["raw_excerpt"] == value[:256].decode()


def test_a_key_given_twice_is_stored_as_checked(con):
    """Parsers disagree on which copy of a repeated key counts: the sink stores what it checked."""
    text = cdr_to_json(CDR, 1).decode()
    first_forged = text.replace('"region":"Russia mobile"', f'"region":{orjson.dumps(LINK).decode()},'
                                                            '"region":"Russia mobile"')
    last_forged = text.replace('"region":"Russia mobile"', '"region":"Russia mobile",'
                                                           f'"region":{orjson.dumps(LINK).decode()}')
    rows, rejects = decode_json(con, "cdrs", _batch("cdrs", (b"c-1", first_forged.encode()),
                                                    (b"c-1", last_forged.encode())))
    assert rows.column("region").to_pylist() == ["Russia mobile"]
    assert rejects.column("reason").to_pylist() == ["bad_field:region"]


FORGED_ALERTS = [
    (dict(type=LINK), "bad_field:type"),
    (dict(type="Controller_Bypassed"), "bad_field:type"),
    (dict(alert_id=LINK), "bad_field:alert_id"),
    (dict(alert_id="controller_bypassed:c-2"), "bad_field:alert_id"),
    (dict(call_id=None), "bad_field:call_id"),
    (dict(call_id=LINK), "bad_field:call_id"),
    (dict(portal_id="@SUM(1)"), "bad_field:portal_id"),
    (dict(ts="yesterday"), "bad_field:ts"),
    (dict(ts=None), "bad_field:ts"),
    (dict(detail="text"), "bad_field:detail"),
    (dict(detail={"state": "closed"}), "bad_field:detail.state"),
    (dict(detail={"state": ["open"]}), "bad_field:detail.state"),
    (dict(type="spend_spike", alert_id="spend_spike:" + LINK), "bad_field:alert_id"),
]


@pytest.mark.parametrize("changes, reason", FORGED_ALERTS)
def test_a_forged_alert_is_rejected_with_its_reason(con, changes, reason):
    rows, rejects = decode_json(con, "alerts", _batch("alerts", (b"p-1", _alert(**changes))))
    assert rows.num_rows == 0
    assert rejects.column("reason").to_pylist() == [reason]


@pytest.mark.parametrize("changes, reason", [
    (dict(alert_id="controller_outage:p-2:2026-11-24T10:35:30.123Z"), "bad_field:alert_id"),
    (dict(alert_id="controller_outage:p-1:2026-11-24T10:35:30Z"), "bad_field:alert_id"),
    (dict(alert_id="controller_outage:p-1:2026-02-30T10:35:30.123Z"), "bad_field:alert_id"),
    (dict(call_id="c-1"), "bad_field:call_id"),
])
def test_a_forged_outage_is_rejected(con, changes, reason):
    rejects = decode_json(con, "alerts", _batch("alerts", (b"p-1", _alert(OUTAGE, **changes))))[1]
    assert rejects.column("reason").to_pylist() == [reason]


def test_an_alert_detail_with_a_key_twice_is_rejected(con):
    value = _alert().replace(b'"detail":{', b'"detail":{"state":"open","state":"retracted",')
    assert decode_json(con, "alerts", _batch("alerts", (b"p-1", value)))[1].column("reason").to_pylist() == \
        ["bad_field:detail"]


def test_contract_alerts_and_rule_alerts_of_later_types_are_accepted(con):
    rule = _alert(type="spend_spike", alert_id="spend_spike:p-1:2026-11-24T10:00:00.000Z", call_id=None,
                  detail={"spend": "12.00"})
    missing = _alert(type="recording_missing", alert_id="recording_missing:c-1", detail={"state": "retracted"})
    rows, rejects = decode_json(con, "alerts", _batch("alerts", *[(b"p-1", v) for v in (
        _alert(), _alert(OUTAGE), _alert(OUTAGE, detail={"state": "resolved"}), rule, missing)]))
    assert rejects.num_rows == 0
    assert rows.column("type").to_pylist() == ["controller_bypassed", "controller_outage", "controller_outage",
                                               "spend_spike", "recording_missing"]


def test_the_sink_requires_the_contract_keys(con):
    tables = {"cdrs": "cdrs", "alerts": "alerts"}
    buffers = {"cdrs": _batch("cdrs", (b"c-1", cdr_to_json(CDR, 1)), (b"c-2", cdr_to_json(CDR, 2)),
                              (None, cdr_to_json(CDR, 3))),
               "alerts": _batch("alerts", (b"p-1", _alert()), (b"c-1", _alert()))}
    out = decode_buffers(con, buffers, tables)
    assert out["cdrs"].num_rows == 1 and out["alerts"].num_rows == 1
    assert sorted(zip(out["rejects"].column("topic").to_pylist(), out["rejects"].column("kafka_offset").to_pylist(),
                      out["rejects"].column("reason").to_pylist())) == \
        [("alerts", 41, "bad_key"), ("cdrs", 41, "bad_key"), ("cdrs", 42, "bad_key")]


_ODD_VALUES = [None, "", 0, -1, 1.5, 1e12, 2**63, "x", LINK, "0.00", "2026-11-24T10:35:30.123Z", True,
               [], ["https://r.example/a", "https://r.example/b"], {"state": "open"}, "+7916", "user:u",
               "internal", 'a"b', "\u0001"]


def _mutations(base: dict) -> list[bytes]:
    """The value with each field set, in turn, to each odd value (and left out)."""
    out = []
    for name in base:
        for odd in _ODD_VALUES:
            out.append(orjson.dumps({**base, name: odd}))
        out.append(orjson.dumps({n: v for n, v in base.items() if n != name}))
    return out


@pytest.mark.parametrize("table, base, key", [("cdrs", GOOD_CDR, b"c-1"), ("alerts", GOOD_ALERT, b"p-1"),
                                              ("alerts", OUTAGE, b"p-1")])
def test_the_fast_path_accepts_nothing_a_rule_refuses(con, table, base, key):
    """A row the one-regex path accepts is one every rule accepts (decode_checked.py)."""
    from warehouse.decode_checked import _rows, table_checks
    from warehouse.output_checks import MAX_VALUE_BYTES
    from warehouse.rejects import first_failure, prefix_checks

    values = [*_mutations(base), *(_cdr(**c) if table == "cdrs" else _alert(**c)
                                   for c, _ in (FORGED_CDRS if table == "cdrs" else FORGED_ALERTS))]
    fast, checks = table_checks(table, check_keys=True)
    failed, _ = first_failure([*prefix_checks("k", MAX_VALUE_BYTES), *checks])
    con.register("raw_in", raw_table(_batch(table, *((key, v) for v in values))))
    try:
        both = con.sql(f"SELECT coalesce(utf8_error IS NULL AND k IS NOT NULL AND {fast}, false), {failed} "
                       f"FROM ({_rows(table)}) ORDER BY _row",
                       params=[json.dumps(_STRUCTURES[table])]).fetchall()
    finally:
        con.unregister("raw_in")
    assert [orjson.loads(v) for v, (ok, failure) in zip(values, both) if ok and failure is not None] == []
    assert sum(ok for ok, _ in both) > 0 and sum(failure is not None for _, failure in both) > len(values) / 2
