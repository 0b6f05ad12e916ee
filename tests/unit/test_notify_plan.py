"""What notify sends when: one message per alert, digests, min-hits, silences, acknowledgements, first start."""

from __future__ import annotations

from datetime import UTC

import pytest

from notify.actions import Actions, ack_event, silence_event, unsilence_event
from notify.keys import delivery_key
from notify.plan import (
    ACKNOWLEDGED,
    BEFORE_FIRST_START,
    BELOW_MIN_HITS,
    SILENCED,
    FirstStart,
    Item,
    Planner,
    Send,
    Settle,
)
from tests.unit.notify_samples import T0, make_alert, make_route

pytestmark = pytest.mark.unit
CH = "json://127.0.0.1:1/hook"


def _item(alert, route, channel=CH) -> Item:
    return Item(delivery_key(alert.alert_id, alert.state, channel), alert, route, channel)


def _offer(planner, route, *alerts):
    decisions = []
    for alert in alerts:
        planner.hit(alert, route)
        decisions += planner.offer(_item(alert, route))
    return decisions


def _ids(decisions, kind=Send):
    return [[it.alert.alert_id for it in d.items] for d in decisions if isinstance(d, kind)]


def test_group_s_0_sends_one_message_per_alert_at_once():
    route = make_route()
    decisions = _offer(Planner(Actions()), route, make_alert("stale_key:c-1"), make_alert("stale_key:c-2"))
    assert _ids(decisions) == [["stale_key:c-1"], ["stale_key:c-2"]]
    first = decisions[0]
    assert first.key == delivery_key("stale_key:c-1", "open", CH)
    assert first.key in first.message.body and "stale_key:c-1" in first.message.body


def test_a_digest_per_route_portal_and_window_lists_every_alert_once_its_window_ends():
    route = make_route(group_s=60)
    planner = Planner(Actions())
    start = T0 - T0 % 60_000
    alerts = [make_alert(f"controller_bypassed:c-{n}", portal=p, call_id=f"c-{n}", at_ms=start + n * 1000,
                         partition=0 if p == "a" else 1)
              for n, p in enumerate("aabab")]
    late = make_alert("controller_bypassed:c-9", portal="a", call_id="c-9", at_ms=start + 61_000)
    assert _offer(planner, route, *alerts, late) == []
    assert planner.tick({0: start + 59_999, 1: start + 59_999}) == []
    decisions = planner.tick({0: start + 60_000, 1: start + 60_000})
    assert sorted(_ids(decisions)) == [["controller_bypassed:c-0", "controller_bypassed:c-1",
                                        "controller_bypassed:c-3"],
                                       ["controller_bypassed:c-2", "controller_bypassed:c-4"]]
    for send in decisions:
        for it in send.items:
            assert f"  {it.alert.alert_id} (open)" in send.message.body
        assert send.key in send.message.body
    assert planner.waiting == 1  # c-9 is in the next window
    assert _ids(planner.tick({0: start + 120_000})) == [["controller_bypassed:c-9"]]


def test_a_digest_whose_alerts_came_from_two_partitions_waits_for_both_watermarks():
    # A portal's alerts normally share a partition; a producer that keys them otherwise must not make a
    # digest close before every partition it drew from has passed the window.
    route = make_route(group_s=60)
    planner = Planner(Actions())
    start = T0 - T0 % 60_000
    _offer(planner, route, make_alert("stale_key:c-1", portal="a", at_ms=start, partition=0),
           make_alert("stale_key:c-2", portal="a", at_ms=start + 1000, partition=3))
    assert planner.tick({0: start + 60_000, 3: start + 59_999}) == []
    assert _ids(planner.tick({0: start + 60_000, 3: start + 60_000})) == [["stale_key:c-1", "stale_key:c-2"]]
    assert planner.waiting == 0


def test_a_digest_too_big_for_one_message_is_sent_in_parts():
    route = make_route(group_s=3600)
    planner = Planner(Actions(), digest_max=3)
    decisions = _offer(planner, route, *[make_alert(f"stale_key:c-{n}", at_ms=T0 + n) for n in range(7)])
    assert [len(d.items) for d in decisions] == [3, 3]
    assert "More alerts of this window follow" in decisions[0].message.body
    assert [len(d.items) for d in planner.tick({0: T0 + 3_600_000})] == [1]


def test_min_hits_holds_alerts_until_enough_match_within_the_window_then_releases_them():
    route = make_route(min_hits=3, window_s=60)
    planner = Planner(Actions())
    a = [make_alert(f"license_error:c-{n}", at_ms=T0 + n * 10_000) for n in range(4)]
    assert _offer(planner, route, a[0], a[1]) == []
    assert _ids(_offer(planner, route, a[2])) == [[a[0].alert_id], [a[1].alert_id], [a[2].alert_id]]
    assert _ids(_offer(planner, route, a[3])) == [[a[3].alert_id]]


def test_min_hits_not_reached_within_the_window_settles_as_below_min_hits():
    route = make_route(min_hits=2, window_s=60)
    planner = Planner(Actions())
    first = make_alert("license_error:c-1", at_ms=T0)
    assert _offer(planner, route, first) == []
    assert planner.tick({0: T0 + 60_000}) == []
    (settled,) = planner.tick({0: T0 + 60_001})
    assert isinstance(settled, Settle) and settled.outcome == BELOW_MIN_HITS
    # A second alert long after does not count the expired one.
    assert _offer(planner, route, make_alert("license_error:c-2", at_ms=T0 + 200_000)) == []


def test_min_hits_counts_each_portal_on_its_own():
    route = make_route(min_hits=2, window_s=60)
    planner = Planner(Actions())
    assert _offer(planner, route, make_alert("license_error:c-1", portal="a"),
                  make_alert("license_error:c-2", portal="b")) == []


def _actions(*events) -> Actions:
    actions = Actions()
    for _, value in events:
        assert actions.apply(value)
    return actions


def test_a_silenced_portal_gets_nothing_while_others_do():
    from datetime import datetime

    now = datetime.fromtimestamp(T0 / 1000, UTC)
    actions = _actions(silence_event("quiet", None, 7200, "maintenance window", "alice", now=now))
    planner = Planner(actions)
    decisions = _offer(planner, make_route(), make_alert("stale_key:c-1", portal="quiet", at_ms=T0 + 1000),
                       make_alert("stale_key:c-2", portal="loud", at_ms=T0 + 1000),
                       make_alert("stale_key:c-3", portal="quiet", at_ms=T0 + 7_200_001))
    assert _ids(decisions) == [["stale_key:c-2"], ["stale_key:c-3"]]
    (silenced,) = [d for d in decisions if isinstance(d, Settle)]
    assert silenced.outcome == SILENCED and "alice" in silenced.why and "maintenance window" in silenced.why


def test_a_silence_of_a_type_and_its_early_lifting():
    from datetime import datetime

    now = datetime.fromtimestamp(T0 / 1000, UTC)
    later = datetime.fromtimestamp((T0 + 60_000) / 1000, UTC)
    key, value = silence_event(None, "stale_key", 3600, "known issue", "bob", now=now)
    actions = _actions((key, value), unsilence_event(key.decode(), "bob", now=later))
    planner = Planner(actions)
    decisions = _offer(planner, make_route(), make_alert("stale_key:c-1", at_ms=T0 + 1000),
                       make_alert("license_error:c-2", at_ms=T0 + 1000),
                       make_alert("stale_key:c-3", at_ms=T0 + 61_000))
    assert _ids(decisions) == [["license_error:c-2"], ["stale_key:c-3"]]
    assert _ids(decisions, Settle) == [["stale_key:c-1"]]


def test_silenced_alerts_are_left_out_of_a_digest():
    from datetime import datetime

    actions = _actions(silence_event("quiet", None, 60, "x", "a", now=datetime.fromtimestamp(T0 / 1000, UTC)))
    planner = Planner(actions)
    route = make_route(group_s=3600)
    _offer(planner, route, make_alert("stale_key:c-1", portal="quiet", at_ms=T0 + 1),
           make_alert("stale_key:c-2", portal="quiet", at_ms=T0 + 120_000))
    decisions = planner.tick({0: T0 + 7_200_000})
    assert _ids(decisions, Settle) == [["stale_key:c-1"]] and _ids(decisions) == [["stale_key:c-2"]]


def test_an_acknowledged_alert_is_not_sent_open_but_still_resolved():
    actions = _actions(ack_event("controller_outage:p-1:t", "carol"))
    decisions = _offer(Planner(actions), make_route(),
                       make_alert("controller_outage:p-1:t", call_id=None, state="open"),
                       make_alert("controller_outage:p-1:t", call_id=None, state="resolved"))
    assert [d.outcome for d in decisions if isinstance(d, Settle)] == [ACKNOWLEDGED]
    (sent,) = [d for d in decisions if isinstance(d, Send)]
    assert sent.items[0].alert.state == "resolved" and "Acknowledged by carol" in sent.message.body


def test_on_the_first_start_old_alerts_on_the_topic_are_recorded_not_sent():
    first = FirstStart(horizon_ms=T0, end_offsets={0: 10})
    planner = Planner(Actions(), first_start=first)
    decisions = _offer(planner, make_route(),
                       make_alert("stale_key:old", at_ms=T0 - 1, offset=3),
                       make_alert("stale_key:recent", at_ms=T0, offset=4),
                       make_alert("stale_key:after-start", at_ms=T0 - 5, offset=10))
    assert _ids(decisions, Settle) == [["stale_key:old"]]
    assert decisions[0].outcome == BEFORE_FIRST_START
    assert _ids(decisions) == [["stale_key:recent"], ["stale_key:after-start"]]


def test_decisions_do_not_depend_on_the_wall_clock_only_on_message_times():
    route = make_route(group_s=60, min_hits=2, window_s=120)
    runs = []
    for _ in range(2):
        planner = Planner(Actions())
        alerts = [make_alert(f"license_error:c-{n}", at_ms=T0 + n * 30_000) for n in range(5)]
        out = _offer(planner, route, *alerts) + planner.tick({0: T0 + 600_000})
        runs.append([(type(d).__name__, d.key if isinstance(d, Send) else d.outcome) for d in out])
    assert runs[0] == runs[1] and runs[0]
