"""The one config object: env parsing, flag precedence, and every setting in docs/configuration.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import SETTINGS, ConfigError, Settings
from scripts import generate_settings_doc

pytestmark = pytest.mark.unit

CONFIGURATION_DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_defaults_match_the_issue():
    settings = Settings.from_env({})
    assert settings.bootstrap == "127.0.0.1:9092"
    assert settings.incomplete_after == 14400.0
    assert (settings.topic_events, settings.topic_dlq, settings.topic_cdrs, settings.topic_alerts) == (
        "call-events", "call-events-dlq", "cdrs", "alerts")
    assert settings.events_partitions == 8
    assert settings.tariffs_path.name == "default.csv"
    assert settings.tariffs_path.exists()


def test_environment_is_read_and_flags_win():
    env = {"CALLSTREAM_BOOTSTRAP": "kafka-1:9093", "CALLSTREAM_INCOMPLETE_AFTER": "60"}
    assert Settings.from_env(env).bootstrap == "kafka-1:9093"
    assert Settings.from_env(env).incomplete_after == 60.0
    assert Settings.from_env(env, bootstrap="flag:1").bootstrap == "flag:1"
    # A flag left unset (None) does not hide the environment.
    assert Settings.from_env(env, bootstrap=None).bootstrap == "kafka-1:9093"


@pytest.mark.parametrize("env, fragment", [
    ({"CALLSTREAM_INCOMPLETE_AFTER": "soon"}, "CALLSTREAM_INCOMPLETE_AFTER"),
    ({"CALLSTREAM_INCOMPLETE_AFTER": "-5"}, "must be > 0"),
    ({"CALLSTREAM_EVENTS_PARTITIONS": "0"}, "CALLSTREAM_EVENTS_PARTITIONS"),
    ({"CALLSTREAM_SECURITY_PROTOCOL": "TLS"}, "SASL_SSL"),
    ({"CALLSTREAM_DASH_PORT": "70000"}, "TCP port"),
    ({"CALLSTREAM_KAFKA_HEAP_MB": "2048"}, "512"),
    # Below the broker's group.min.session.timeout.ms (6 s) a worker could not join its group.
    ({"CALLSTREAM_WORKER_SESSION_TIMEOUT_S": "3"}, "CALLSTREAM_WORKER_SESSION_TIMEOUT_S"),
    ({"CALLSTREAM_WORKER_SESSION_TIMEOUT_S": "12", "CALLSTREAM_WORKER_HEARTBEAT_S": "5"}, "a third"),
])
def test_bad_values_name_the_variable(env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_env(env)


def test_security_options_pass_through():
    env = {"CALLSTREAM_SECURITY_PROTOCOL": "sasl_ssl", "CALLSTREAM_SASL_MECHANISM": "SCRAM-SHA-512",
           "CALLSTREAM_SASL_USERNAME": "svc", "CALLSTREAM_SASL_PASSWORD": "s3cret",
           "CALLSTREAM_SSL_CAFILE": "/etc/ca.pem"}
    options = Settings.from_env(env).kafka_client_options()
    assert options == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                       "sasl_plain_username": "svc", "sasl_plain_password": "s3cret",
                       "ssl_cafile": "/etc/ca.pem", "ssl_certfile": None, "ssl_keyfile": None}
    assert Settings.from_env({}).kafka_client_options() == {"security_protocol": "PLAINTEXT"}


def test_every_setting_is_documented():
    """docs/configuration.md's table is the one the declarations give (regenerate it when this fails)."""
    page = CONFIGURATION_DOC.read_text(encoding="utf-8")
    assert generate_settings_doc.current(page) == generate_settings_doc.table()
    assert all(f"`{s.env}`" in page for s in SETTINGS)
