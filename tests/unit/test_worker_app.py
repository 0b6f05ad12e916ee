"""The worker's Faust app is declared as designed (no broker needed to check)."""

from __future__ import annotations

import pytest

from common.config import Settings
from streams.app import changelog_topic_names, declare
from streams.domain.rating import load_tariffs
from streams.worker import worker_topics

pytestmark = pytest.mark.unit


def test_tables_use_the_stores_and_codecs_the_design_relies_on(tmp_path):
    settings = Settings.from_env({}, state_dir=str(tmp_path))
    worker = declare(settings, load_tariffs(settings.tariffs_path))
    # The archive is on disk (bounded memory); the hot table in memory.
    assert type(worker.archived_calls_by_id.data).__module__ == "faust.stores.rocksdb"
    assert type(worker.calls_by_id.data).__module__ == "faust.stores.memory"
    # Raw codecs: recovery must hand back the bytes the worker wrote.
    for table in (worker.calls_by_id, worker.archived_calls_by_id, worker.outages_by_portal):
        assert (table.key_serializer, table.value_serializer) == ("raw", "raw")
        assert table.partitions == settings.events_partitions
    assert str(worker.app.conf.broker[0]).startswith("callstream://")
    # The agents' inputs arrive a fetch at a time; the changelogs (recovery) record by record.
    assert worker.app.consumer.batched_topics == {
        settings.topic_events, worker.commands.get_topic_name(), worker.signals.get_topic_name()}


def test_the_worker_creates_every_table_changelog_itself(tmp_path):
    # Created (and waited for) before Faust starts, so the first assignment sees them.
    settings = Settings.from_env({}, state_dir=str(tmp_path))
    worker = declare(settings, load_tariffs(settings.tariffs_path))
    actual = sorted(t.changelog_topic.get_topic_name() for t in worker.app.tables.values())
    assert sorted(changelog_topic_names(settings)) == actual
    specs = {spec.name: spec for spec in worker_topics(settings)}
    for name in actual:
        assert specs[name].partitions == settings.events_partitions
        assert dict(specs[name].configs)["cleanup.policy"] == "compact"


def test_the_group_forgets_a_killed_worker_within_the_configured_session(tmp_path):
    # Faust's own default (60 s) alone put failover after kill -9 beyond the 30 s goal (issue 16).
    settings = Settings.from_env({}, state_dir=str(tmp_path))
    conf = declare(settings, load_tariffs(settings.tariffs_path)).app.conf
    assert settings.worker_session_timeout_s <= 10
    assert conf.broker_session_timeout == settings.worker_session_timeout_s
    assert conf.broker_heartbeat_interval == settings.worker_heartbeat_s
    tuned = Settings.from_env({"CALLSTREAM_WORKER_SESSION_TIMEOUT_S": "30",
                               "CALLSTREAM_WORKER_HEARTBEAT_S": "5"}, state_dir=str(tmp_path))
    conf = declare(tuned, load_tariffs(tuned.tariffs_path)).app.conf
    assert (conf.broker_session_timeout, conf.broker_heartbeat_interval) == (30.0, 5.0)
