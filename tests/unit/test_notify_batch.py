"""A catch-up's batch path decides as notify always has (issue 14: catch-up speed).

The service's loop over a fetch, the key tails, the owed-key bookkeeping and the bypass tracker's
evictions in chunks were rewritten for speed; these tests hold them to the plain definitions.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.config import Settings
from notify import bypasses as bypasses_mod
from notify.actions import Actions, Silence
from notify.alerts import parse_alert
from notify.bypasses import Bypasses, _ms, newest_ms
from notify.keys import batch_key, delivery_key, delivery_tail, digest_key
from notify.plan import FirstStart, Item, Planner, Send, Settle
from notify.progress import Progress
from notify.rules import Rules
from notify.service import Service
from tests.unit.notify_samples import T0, make_alert, make_route

pytestmark = pytest.mark.unit
HOOK, MAIL = "json://127.0.0.1:1/hook", "mailto://u:p@127.0.0.1:2?to=a@b.c"


def test_keys_are_the_ones_already_in_every_ledger():
    """The ledger on the broker holds these keys: a faster hash must give them byte for byte."""
    assert delivery_key("controller_bypassed:c-1", "open", HOOK) == "a1e918333397356c6cbb79280ad7dc2c"
    assert digest_key("json://x", ["b", "a"]) == "48193ea27a55ba25e0877ffc81f841cf"
    assert batch_key("silenced", ["a"]) == "3a669d0c461949d630972088ae765e25"
    assert delivery_tail("open", HOOK) == b"\x00open\x00" + HOOK.encode()


STAMP = st.one_of(
    st.from_regex(r"\A20[0-9]{2}-(0[1-9]|1[0-3])-([0-2][0-9]|3[01])T([01][0-9]|2[0-5]):[0-5][0-9]:[0-6][0-9]"
                  r"(\.[0-9]{1,6})?(Z|z|\+00:00)\Z"),
    st.sampled_from(["1969-12-31T23:59:59.000Z", "1970-01-01T00:00:00.000Z", "2026-02-30T00:00:00.000Z",
                     "2026-12-03T10:00:00.000Z\n2027-01-01T00:00:00.000Z", "soon"]))


@settings(max_examples=120, deadline=None)
@given(st.lists(STAMP, max_size=12))
def test_the_newest_of_a_chunk_is_the_newest_parsed_one(stamps):
    assert newest_ms(stamps) == max((_ms(ts) or 0 for ts in stamps), default=0)


def test_a_portal_past_its_bound_asks_the_fallback_for_windows_before_what_it_dropped(monkeypatch):
    monkeypatch.setattr(bypasses_mod, "PER_PORTAL", 30)
    monkeypatch.setattr(bypasses_mod, "EVICT_CHUNK", 10)
    asked = []
    tracker = Bypasses(lambda portal, start, end: asked.append(portal) or -1)
    tracker.from_beginning(0)
    for i in range(35):  # one bypass a minute from 01:00; the 31st drops the oldest 10 (01:00-01:09)
        tracker.see(make_alert(f"controller_bypassed:b-{i}", portal="acme", ts=f"2026-12-03T01:{i:02d}:00.000Z"))
    assert tracker.count("acme", "2026-12-03T01:09:00.000Z", None) == -1 and asked == ["acme"]
    assert tracker.count("acme", "2026-12-03T01:09:00.001Z", None) == 25  # 01:10 - 01:34: all still known
    assert len(tracker._calls["acme"]) == 25


def test_settling_many_keys_moves_the_cursors_as_settling_each():
    one, many = Progress(), Progress()
    for progress in (one, many):
        progress.read(0, 10, 100, [1, 2])
        progress.read(1, 3, 50, [2, 4])  # key 2 owed by offsets of two partitions
        progress.read(0, 11, 101, [5])
    for key in (2, 1, 9):
        one.settle(key)
    many.settle_many([2, 1, 9])
    assert one.cursor(0) == many.cursor(0) == (11, 101) and one.cursor(1) == many.cursor(1) == (3, 50)
    assert one.pending == many.pending == 2


class _Reader:
    def __init__(self, resume):
        self.resume = resume


class _Writer:
    def __init__(self):
        self.outcomes = []

    def outcome(self, key, outcome, members, channel, **_):
        self.outcomes.append((outcome, sorted(members)))


class _Sender:
    def __init__(self):
        self.sent: list[Send] = []

    def submit(self, send):
        self.sent.append(send)


def _service(routes, *, resume=None, first=None):
    service = Service(Settings.from_env(), Rules(tuple(routes)))
    for sender in service.senders.values():
        sender.close(timeout_s=1.0)
    service.senders = {url: _Sender() for url in service.senders}
    service.reader, service.writer = _Reader(resume or {}), _Writer()
    service.first = first or FirstStart(0, {})
    service.planner = Planner(service.actions, first_start=service.first, bypasses=service.bypasses.count)
    return service


def _record(partition, offset, alert_id, *, state="open", portal="p-1", at_ms=T0):
    value = orjson.dumps({"alert_id": alert_id, "type": alert_id.split(":")[0], "portal_id": portal,
                          "call_id": "c-1", "ts": "2026-12-03T10:00:00.000Z", "detail": {"state": state}})
    return (partition, offset, at_ms + offset, value)


def test_a_fetch_owes_each_alert_state_once_per_channel_and_moves_each_cursor():
    service = _service([make_route(1, channels=(HOOK,), cont=True), make_route(2, channels=(HOOK, MAIL))])
    records = [_record(0, 0, "stale_key:a"), (0, 1, T0 + 1, b"not json"), _record(0, 2, "stale_key:a"),
               _record(0, 3, "stale_key:a", state="resolved"), _record(3, 7, "stale_key:b")]
    service.take_batch(records)
    sent = {(s.channel, s.items[0].alert.pair) for sender in service.senders.values() for s in sender.sent}
    assert sent == {(ch, pair) for ch in (HOOK, MAIL) for pair in
                    (("stale_key:a", "open"), ("stale_key:a", "resolved"), ("stale_key:b", "open"))}
    for sender in service.senders.values():
        for send in sender.sent:
            assert send.key == delivery_key(*send.items[0].alert.pair, send.channel)
    assert service.status.refused_count == 1
    assert service.progress.cursor(0) == (0, T0) and service.progress.cursor(3) == (7, T0 + 7)
    hook = service.senders[HOOK].sent
    service._settle([s.key for s in hook if s.items[0].alert.pair == ("stale_key:a", "open")])
    assert service.progress.cursor(0) == (0, T0)  # the mail of a's open state is still owed
    service._settle([s.key for s in service.senders[MAIL].sent if s.items[0].alert.alert_id == "stale_key:a"])
    assert service.progress.cursor(0) == (3, T0 + 3)  # offset 2 re-sent a's open state: settled with it
    service._settle([s.key for s in hook])
    assert service.progress.cursor(0) == (4, T0 + 3) and service.progress.cursor(3) == (7, T0 + 7)
    service.take_batch([_record(0, 4, "stale_key:a")])  # settled already: nothing sent, the cursor moves
    assert len(hook) == 3 and service.progress.cursor(0) == (5, T0 + 4)


def test_a_fetch_warms_up_below_the_resume_offset_and_settles_what_the_first_start_skips():
    route = make_route(1, channels=(HOOK,), min_hits=2, window_s=600)
    service = _service([route], resume={0: 2}, first=FirstStart(T0 + 4, {0: 4}))
    service.take_batch([_record(0, n, f"stale_key:w{n}") for n in range(6)])
    # 0 and 1 only count toward min-hits; 2 and 3 are before the first start and older than its horizon.
    assert service.writer.outcomes == [("not_delivered_before_first_start",
                                        [delivery_key(f"stale_key:w{n}", "open", HOOK)]) for n in (2, 3)]
    assert [s.items[0].alert.alert_id for s in service.senders[HOOK].sent] == ["stale_key:w4", "stale_key:w5"]
    assert service.progress.cursor(0) == (4, T0 + 4)


def test_the_inline_parse_reads_what_the_planner_gets():
    alert = parse_alert(_record(2, 9, "stale_key:x", state="retracted")[3], 2, 9, T0)
    made = make_alert("stale_key:x", portal="p-1", state="retracted", at_ms=T0, partition=2, offset=9)
    assert alert == made._replace(detail={"state": "retracted"})
    long = orjson.loads(_record(2, 9, "stale_key:x")[3])
    long["detail"] = {"note": "n" * 500, "list": [1], "k" * 65: 1, **{f"f{n}": n for n in range(30)}}
    kept = parse_alert(orjson.dumps(long), 2, 9, T0).detail
    assert kept == {"note": "n" * 200, **{f"f{n}": n for n in range(23)}}  # 24 scalar fields kept, cut to 200


def test_a_digest_of_one_goes_out_at_once_and_a_silence_still_holds_in_a_window():
    route = make_route(1, channels=(HOOK,), group_s=300)
    alert = make_alert("stale_key:s1", portal="quiet", at_ms=T0)
    item = Item(delivery_key(alert.alert_id, "open", HOOK), alert, route, HOOK)
    out = Planner(Actions(), digest_max=1).offer(item)
    assert [d.__class__ for d in out] == [Send] and out[0].items == (item,)
    actions = Actions()
    actions.silences["s-1"] = Silence("s-1", "quiet", None, T0 - 1, T0 + 10, "planned work", "ops", "now")
    planner = Planner(actions)
    assert planner.offer(item) == ()
    assert [(d.__class__, d.outcome) for d in planner.tick({0: T0 + 600_000})] == [(Settle, "silenced")]
