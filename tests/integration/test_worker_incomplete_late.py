"""Timeouts and late events on the real broker: incomplete CDRs, the archive, late recordings.

One worker with ``CALLSTREAM_INCOMPLETE_AFTER=2`` and ``CALLSTREAM_FORGET_AFTER=2``:
calls missing ``call.ended`` (or ``call.started``) are emitted ``incomplete``, then
completed by the missing event; settled calls move to the on-disk archive
(seen on its changelog topic), and a late ``recording.stored`` revives such a
call into its next version, counted once however often it is redelivered.
"""

from __future__ import annotations

import pytest

from streams.domain.timefmt import parse_ts_us
from tests.integration.worker_expect import CdrLog, call_events, expect, recording
from tests.integration.worker_harness import (
    Fleet,
    Probe,
    produce,
    read_topic,
    split_between,
    wait_for,
    wait_until_done,
    worker_settings,
)

pytestmark = [pytest.mark.integration, pytest.mark.alone]  # kills or times processes: nothing beside it
__all__ = ["worker_settings"]  # the fixture, imported for pytest

START_US = parse_ts_us("2026-11-24T09:00:00Z")
TIMEOUTS = {"CALLSTREAM_INCOMPLETE_AFTER": "2", "CALLSTREAM_FORGET_AFTER": "2"}


def _cdrs(settings) -> CdrLog:
    log = CdrLog.of(read_topic(settings, settings.topic_cdrs))
    assert not log.problems, log.problems
    return log


def _wait_versions(settings, least: dict[str, int]) -> CdrLog:
    """The CDR log once every call in ``least`` reached at least that version."""
    def reached():
        log = _cdrs(settings)
        return log if all(log.top_version(c) >= v for c, v in least.items()) else None
    return wait_for(reached, f"CDR versions {least}")


def _stored(settings, table: str) -> dict[str, bool]:
    """call_id -> whether its latest record on ``table``'s changelog is a value (not a tombstone)."""
    present: dict[str, bool] = {}
    for record in read_topic(settings, f"{settings.worker_group}-{table}-changelog"):
        present[record.key.decode()] = record.value is not None
    return present


def _archived(settings, call_ids: set[str]) -> bool:
    archive, hot = _stored(settings, "archived_calls_by_id"), _stored(settings, "calls_by_id")
    return all(archive.get(c) and not hot.get(c) for c in call_ids)


def _expected(settings) -> dict[str, dict]:
    return expect(read_topic(settings, settings.topic_events), settings).cdrs


def test_incomplete_calls_are_emitted_then_completed_and_late_events_revive_archived_calls(
        worker_settings, tmp_path):
    settings = worker_settings
    a = call_events("call-a", START_US)                  # will lack call.ended for a while
    b = call_events("call-b", START_US + 60_000_000)     # will lack call.started for a while
    c = call_events("call-c", START_US + 120_000_000, record=True)
    d = call_events("call-d", START_US + 180_000_000)
    held_back = [a.pop("call.ended"), b.pop("call.started")]
    produce(settings, [*a.values(), *b.values(), *c.values(), *d.values()])
    with Fleet(tmp_path) as fleet:
        worker = fleet.start(settings, "worker", **TIMEOUTS)
        _incomplete_then_archived(settings)
        _completed_by_the_missing_events(settings, worker, held_back)
        late = _late_recording_revives_an_archived_call(settings, worker)
        _redelivered_events_change_nothing(settings, worker, [late, c["call.ended"], d["call.answered"]],
                                           [late, c["recording.stored"]])
        assert not read_topic(settings, settings.topic_dlq)


def _incomplete_then_archived(settings) -> None:
    """First versions: two incomplete calls; then all four settle into the archive."""
    log = _wait_versions(settings, {"call-a": 1, "call-b": 1, "call-c": 1, "call-d": 1})
    first = log.latest()
    expected = expect(read_topic(settings, settings.topic_events), settings)
    assert expected.incomplete == {"call-a", "call-b"}
    assert first == expected.cdrs
    assert first["call-a"]["status"] == first["call-b"]["status"] == "incomplete"
    assert first["call-a"]["ended_at"] is None and first["call-a"]["talk_s"] is None
    assert first["call-b"]["started_at"] is None and first["call-b"]["region"] is None
    assert first["call-c"]["recording_bytes"] == 760_000
    # Settled (incomplete ones included) and quiet: all four move to the archive,
    # and an incomplete call is emitted once per quiet period, not once per sweep.
    wait_for(lambda: _archived(settings, {"call-a", "call-b", "call-c", "call-d"}),
             "the four calls in the archive", timeout=60)
    assert _cdrs(settings).versions == log.versions


def _completed_by_the_missing_events(settings, worker, held_back) -> None:
    """The held-back call.ended / call.started give version 2 with the real status."""
    produce(settings, held_back)
    _wait_versions(settings, {"call-a": 2, "call-b": 2})
    wait_until_done(settings, [worker])
    log, want = _cdrs(settings), _expected(settings)
    assert log.top_version("call-a") == log.top_version("call-b") == 2
    assert log.latest() == want
    assert want["call-a"]["status"] == want["call-b"]["status"] == "answered"


def _late_recording_revives_an_archived_call(settings, worker):
    """A recording stored an hour after call-c, which lives only in the archive by then."""
    wait_for(lambda: _archived(settings, {"call-c"}), "call-c in the archive", timeout=60)
    settled_c = _cdrs(settings).top_version("call-c")
    late = recording("call-c", START_US + 3_600_000_000, 1_200_000)
    produce(settings, [late])
    _wait_versions(settings, {"call-c": settled_c + 1})
    wait_until_done(settings, [worker])
    log = _cdrs(settings)
    assert log.top_version("call-c") == settled_c + 1  # the next version, not 1 of a new call
    cdr = log.latest()["call-c"]
    assert cdr["recording_bytes"] == 760_000 + 1_200_000 and len(cdr["recording_urls"]) == 2
    assert cdr == _expected(settings)["call-c"]
    return late


def _redelivered_events_change_nothing(settings, worker, while_hot, once_archived) -> None:
    """Copies of seen events, while the calls are hot and once archived again: no new version."""
    before = _cdrs(settings).versions
    produce(settings, while_hot)
    wait_until_done(settings, [worker])
    assert _cdrs(settings).versions == before
    wait_for(lambda: _archived(settings, {"call-c", "call-d"}), "call-c archived again", timeout=60)
    produce(settings, once_archived)
    wait_until_done(settings, [worker])
    final = _cdrs(settings)
    assert final.versions == before
    assert final.latest() == _expected(settings)
    assert final.latest()["call-c"]["recording_bytes"] == 1_960_000


def test_the_survivor_expires_the_open_calls_of_a_killed_worker(worker_settings, tmp_path):
    """Open calls of a killed worker's partitions still get their ``incomplete`` CDR, from the
    worker that took the partitions over (its schedule is rebuilt from the recovered table)."""
    settings = worker_settings
    timeouts = {"CALLSTREAM_INCOMPLETE_AFTER": "6", "BROKER_SESSION_TIMEOUT": "12",
                "BROKER_HEARTBEAT_INTERVAL": "2"}
    calls = {f"open-{n}": call_events(f"open-{n}", START_US + n * 1_000_000) for n in range(40)}
    for events in calls.values():
        del events["call.ended"]
    with Fleet(tmp_path) as fleet:
        pair = [fleet.start(settings, "worker-a", **timeouts),
                fleet.start(settings.replace(state_dir=f"{settings.state_dir}-b"), "worker-b", **timeouts)]
        probe = Probe(settings)
        try:
            wait_for(lambda: split_between(probe, settings, 2), "both workers holding partitions",
                     timeout=90, workers=pair)
            produce(settings, [m for events in calls.values() for m in events.values()])
            # Killed once it stored every call's state and before a timeout could expire one.
            wait_for(lambda: set(_stored(settings, "calls_by_id")) >= calls.keys(), "the calls' states",
                     every=0.05, workers=pair)
            pair[0].kill()
            assert not _cdrs(settings).versions, "a call expired before the kill: nothing was tested"
            wait_for(lambda: pair[1].check() or split_between(probe, settings, 1),
                     "the survivor holding every partition", timeout=90, workers=[pair[1]])
        finally:
            probe.close()
        log = _wait_versions(settings, dict.fromkeys(calls, 1))
    assert log.latest() == _expected(settings)
    assert {cdr["status"] for cdr in log.latest().values()} == {"incomplete"}


def _alerts_of(settings) -> dict[str, dict]:
    import orjson

    latest: dict[str, dict] = {}
    for record in read_topic(settings, settings.topic_alerts):
        doc = orjson.loads(record.value)
        latest[doc["alert_id"]] = doc
    return latest


def test_a_missing_recording_is_raised_after_the_wait_and_retracted_when_it_arrives(worker_settings, tmp_path):
    """Contract v1.1 ``recording_missing`` on the live worker: worker clock, not event time."""
    settings = worker_settings
    lost = call_events("lost-rec", START_US, record=True)
    kept = call_events("kept-rec", START_US + 1_000_000, record=True)
    late = lost.pop("recording.stored")
    produce(settings, [*lost.values(), *kept.values()])
    with Fleet(tmp_path) as fleet:
        worker = fleet.start(settings, "worker", CALLSTREAM_RECORDING_WAIT="3")
        _wait_versions(settings, {"lost-rec": 1, "kept-rec": 1})
        assert "recording_missing:lost-rec" not in _alerts_of(settings)  # the wait has not passed
        alert = wait_for(lambda: _alerts_of(settings).get("recording_missing:lost-rec"),
                         "recording_missing raised", timeout=60, workers=[worker])
        assert alert["type"] == "recording_missing" and "state" not in alert["detail"]
        assert alert["detail"]["talk_s"] == "95.500"
        produce(settings, [late])
        retracted = wait_for(lambda: (_alerts_of(settings)["recording_missing:lost-rec"]["detail"]
                                      .get("state") == "retracted") or None,
                             "recording_missing retracted", timeout=60, workers=[worker])
        assert retracted
        wait_until_done(settings, [worker])
    assert "recording_missing:kept-rec" not in _alerts_of(settings)
    assert _cdrs(settings).latest() == _expected(settings)


def test_over_the_hot_calls_cap_the_quietest_calls_are_settled_and_archived_early(worker_settings, tmp_path):
    """CALLSTREAM_MAX_HOT_CALLS bounds the worker's memory by count: open calls beyond it get
    their incomplete CDR before their timeout and move to the archive; a later event revives them."""
    settings = worker_settings.replace(max_hot_calls=1000)
    calls = {f"flood-{n:04d}": call_events(f"flood-{n:04d}", START_US + n * 1_000_000) for n in range(1400)}
    for events in calls.values():
        del events["call.ended"]
    produce(settings, [m for events in calls.values() for m in events.values()])
    with Fleet(tmp_path) as fleet:
        worker = fleet.start(settings, "worker", CALLSTREAM_INCOMPLETE_AFTER="3600")
        wait_for(lambda: len(_cdrs(settings).versions) >= 400 or None, "evicted calls' incomplete CDRs",
                 timeout=120, workers=[worker])
        wait_until_done(settings, [worker])
        log = _cdrs(settings)
        evicted = set(log.versions)
        assert 400 <= len(evicted) <= 600  # down to 90 % of the cap: ~500 of the 1,400
        assert {cdr["status"] for cdr in log.latest().values()} == {"incomplete"}
        archive = _stored(settings, "archived_calls_by_id")
        assert all(archive.get(c) for c in evicted)
        revived = sorted(evicted)[0]
        produce(settings, [call_events(revived, START_US)["call.ended"]])
        _wait_versions(settings, {revived: 2})
        assert _cdrs(settings).latest()[revived]["status"] == "answered"


def test_over_the_portals_cap_idle_portal_states_are_forgotten(worker_settings, tmp_path):
    """A flood of made-up portal ids cannot grow the worker's portal table without bound:
    over CALLSTREAM_MAX_PORTALS, idle portals (no open outage) are dropped from it."""
    settings = worker_settings.replace(max_portals=50)
    calls = [call_events(f"fp-{n:03d}", START_US + n * 1_000_000, portal=f"flood-portal-{n:03d}")
             for n in range(200)]
    with Fleet(tmp_path) as fleet:
        worker = fleet.start(settings, "worker")
        for at in range(0, 200, 50):  # several signal batches: the table is trimmed after each
            produce(settings, [m for events in calls[at:at + 50] for m in events.values()])
            wait_until_done(settings, [worker])
        live = {k for k, present in _stored(settings, "outages_by_portal").items() if present}
        assert 0 < len(live) <= 50 + 50  # the cap, plus at most one batch's new portals
        assert len(_cdrs(settings).versions) == 200  # the calls themselves are untouched
