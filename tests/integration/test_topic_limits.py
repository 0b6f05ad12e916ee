"""``topics.raise_message_limits``: the worker's start-up check of its topics' message limit."""

from __future__ import annotations

import logging

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from streams import topics
from streams.topics import _admin

pytestmark = pytest.mark.integration


def _limit(settings, name: str) -> int:
    admin = _admin(settings)
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)],
                                           config_filter="all")
        return int(described["topic"][name]["max.message.bytes"]["value"])
    finally:
        admin.close()


def test_a_smaller_limit_is_raised_and_a_larger_one_kept(kafka_settings, unique):
    small, large = f"t{unique}-small", f"t{unique}-large"
    topics.ensure_topics(kafka_settings, [topics.TopicSpec(small, 1, {"max.message.bytes": "1048588"}),
                                          topics.TopicSpec(large, 1, {"max.message.bytes": "16777216"})])
    try:
        wanted = {"max.message.bytes": topics.INTERNAL_MESSAGE_BYTES}
        topics.raise_message_limits(kafka_settings, [topics.TopicSpec(small, 1, wanted),
                                                     topics.TopicSpec(large, 1, wanted)])
        assert _limit(kafka_settings, small) == int(topics.INTERNAL_MESSAGE_BYTES)
        assert _limit(kafka_settings, large) == 16777216
    finally:
        topics.delete_topics(kafka_settings, [small, large])


def test_a_topic_the_broker_does_not_describe_is_logged_not_a_reason_to_stop(kafka_settings, unique, caplog):
    # What a broker that does not know a topic yet answers (a node just restarted): before,
    # kafka-python's check of the config keys failed on it and the worker exited at start.
    missing = f"t{unique}-not-there"
    with caplog.at_level(logging.WARNING, logger="callstream.topics"):
        topics.raise_message_limits(kafka_settings, [topics.TopicSpec(
            missing, 1, {"max.message.bytes": topics.INTERNAL_MESSAGE_BYTES})], timeout_s=2.0)
    assert any(missing in record.getMessage() for record in caplog.records)
