"""Fixtures of the integration tests: one real Kafka broker per session, fresh topics per test.

The broker at CALLSTREAM_BOOTSTRAP is used when it answers (CI starts it once
with ``callstream broker start``); otherwise the session starts a local one
under ``var/test-kafka`` and stops it at the end. Integration tests never run
against a fake broker and never skip silently: no broker means they fail.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from common.config import Settings
from streams import broker, topics
from tests.integration.java_producer import JavaProducer
from tests.integration.worker_harness import worker_settings

__all__ = ["worker_settings"]  # topics of the worker group deleted after the test

ROOT = Path(__file__).resolve().parents[2]


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def kafka_settings() -> Settings:
    """Settings pointing at a live broker (started for the session if needed)."""
    settings = Settings.from_env()
    if broker.answers_metadata(settings):
        yield settings
        return
    local = settings.replace(kafka_dir=os.environ.get("CALLSTREAM_TEST_KAFKA_DIR",
                                                      str(ROOT / "var" / "test-kafka")))
    _, started = broker.start(local)
    try:
        yield local
    finally:
        if started:
            broker.stop(local)


@pytest.fixture
def unique() -> str:
    """A short id that makes this test's topics and groups its own."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def pipeline_settings(kafka_settings: Settings, unique: str, tmp_path: Path) -> Settings:
    """Settings with this test's own topics, groups, state dir and warehouse, topics created."""
    settings = kafka_settings.replace(
        topic_events=f"t{unique}-call-events",
        topic_dlq=f"t{unique}-call-events-dlq",
        topic_cdrs=f"t{unique}-cdrs",
        topic_alerts=f"t{unique}-alerts",
        worker_group=f"t{unique}-worker",
        sink_group=f"t{unique}-sink",
        state_dir=str(tmp_path / "worker-state"),
        warehouse=str(tmp_path / "warehouse"),
    )
    topics.ensure_topics(settings, topics.project_topics(settings))
    yield settings


@pytest.fixture(scope="session")
def java_producer(kafka_settings: Settings, tmp_path_factory) -> JavaProducer:
    """The Java client of the broker's jars, compiled once for the session (tests/integration/java)."""
    return JavaProducer.compile(kafka_settings, tmp_path_factory.mktemp("java-producer"))
