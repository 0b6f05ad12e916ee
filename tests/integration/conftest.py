"""Fixtures shared by the integration tests (the broker-wide ones are in ``tests/conftest.py``)."""

from __future__ import annotations

import pytest

from callstream.config import Settings
from tests.integration.java_producer import JavaProducer
from tests.integration.worker_harness import worker_settings

__all__ = ["worker_settings"]  # topics of the worker group deleted after the test


@pytest.fixture(scope="session")
def java_producer(kafka_settings: Settings, tmp_path_factory) -> JavaProducer:
    """The Java client of the broker's jars, compiled once for the session (tests/integration/java)."""
    return JavaProducer.compile(kafka_settings, tmp_path_factory.mktemp("java-producer"))
