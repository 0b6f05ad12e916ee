"""The local broker launcher against a real JVM: start, idempotence, topics, clean stop."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.integration.ports import free_port_pair

pytestmark = pytest.mark.integration


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "callstream.cli", *args], capture_output=True,
                          text=True, env=env, timeout=180)


def test_start_is_idempotent_creates_topics_and_stop_leaves_no_process(tmp_path):
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    port = free_port_pair()
    env = dict(os.environ, CALLSTREAM_BOOTSTRAP=f"127.0.0.1:{port}",
               CALLSTREAM_KAFKA_DIR=str(tmp_path / "kafka"))
    first = _cli(env, "broker", "start")
    assert first.returncode == 0, first.stderr
    assert f"bootstrap=127.0.0.1:{port}" in first.stdout
    pid = int(first.stdout.split("pid ")[1].split(")")[0])
    try:
        again = _cli(env, "broker", "start")
        assert again.returncode == 0 and "already running" in again.stdout
        assert _cli(env, "broker", "status").returncode == 0

        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
        try:
            described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(
                ["call-events", "call-events-dlq", "cdrs", "alerts"])}
            assert described["call-events"] == 8
            configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "call-events")])
            entries = configs["topic"]["call-events"]
            assert entries["retention.ms"]["value"] == "-1"
            assert entries["retention.bytes"]["value"] == "-1"
            cdrs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "cdrs")])
            assert cdrs["topic"]["cdrs"]["cleanup.policy"]["value"] == "compact"
        finally:
            admin.close()
    finally:
        stopped = _cli(env, "broker", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not os.path.exists(f"/proc/{pid}") or _zombie(pid)
    assert _cli(env, "broker", "status").returncode == 1
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_port_taken_by_a_stranger_is_refused(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = dict(os.environ, CALLSTREAM_BOOTSTRAP=f"127.0.0.1:{port}",
                   CALLSTREAM_KAFKA_DIR=str(tmp_path / "kafka"))
        done = _cli(env, "broker", "start")
    assert done.returncode == 1
    assert "already taken" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_broker_that_does_not_become_ready_is_not_left_running(tmp_path):
    from common.config import Settings
    from common.errors import CliError
    from streams import broker

    port = free_port_pair()
    settings = Settings.from_env({}, bootstrap=f"127.0.0.1:{port}", kafka_dir=str(tmp_path / "kafka"))
    with pytest.raises(CliError, match="did not answer"):
        broker.start(settings, timeout_s=0.5)  # far too short for a JVM to start
    assert broker.status(settings) is None
    leftovers = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline_mentions(p, str(tmp_path))]
    assert leftovers == []


def _cmdline_mentions(pid: str, text: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return text.encode() in cmdline.read()
    except OSError:
        return False
