"""``callstream up`` end to end: its own topics, groups and warehouse on the test broker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from common.config import Settings
from tests.integration.dashboard_support import chrome, load, quit_chrome, screenshot

pytestmark = [pytest.mark.integration, pytest.mark.alone]  # kills or times processes: nothing beside it


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def up_env(kafka_settings: Settings, unique: str, tmp_path: Path):
    env = dict(os.environ, CALLSTREAM_BOOTSTRAP=kafka_settings.bootstrap,
               CALLSTREAM_TOPIC_EVENTS=f"t{unique}-call-events", CALLSTREAM_TOPIC_DLQ=f"t{unique}-dlq",
               CALLSTREAM_TOPIC_CDRS=f"t{unique}-cdrs", CALLSTREAM_TOPIC_ALERTS=f"t{unique}-alerts",
               CALLSTREAM_WORKER_GROUP=f"t{unique}-worker", CALLSTREAM_SINK_GROUP=f"t{unique}-sink",
               CALLSTREAM_WAREHOUSE=str(tmp_path / "warehouse"), CALLSTREAM_STATE_DIR=str(tmp_path / "state"),
               CALLSTREAM_KAFKA_DIR=str(tmp_path / "kafka"), CALLSTREAM_DASH_PORT=str(_free_port()),
               CALLSTREAM_EVENTS_PARTITIONS="2", CALLSTREAM_OUTPUT_PARTITIONS="2", PYTHONUNBUFFERED="1")
    yield env
    from notify.topics import notify_topics
    from streams import topics
    from streams.worker import worker_topics

    settings = Settings.from_env(env)
    names = [spec.name for spec in worker_topics(settings) + notify_topics(settings)]
    try:
        topics.delete_topics(settings, [n for n in names if n in _existing(settings)])
    except Exception:  # noqa: BLE001 - clean-up is best effort; the names are unique anyway
        pass


def _existing(settings: Settings) -> set[str]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def _wait_line(process: subprocess.Popen, marker: str, timeout_s: float, seen: list[str]) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        if marker in line:
            return line
    raise AssertionError(f"no {marker!r} within {timeout_s} s; output:\n{''.join(seen)}")


def _calls_in(warehouse: Path) -> int:
    from warehouse import queries
    from warehouse.reader import Reader

    if not (warehouse / "manifest.json").exists():
        return 0
    with Reader(warehouse) as reader:
        return queries.call_count(reader)


def test_up_runs_everything_and_ctrl_c_leaves_nothing(up_env, tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "callstream.cli", "up", "--logs", str(tmp_path / "logs"),
                                "--rate", "5", "--portals", "5"], env=up_env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    try:
        line = _wait_line(process, "dashboard at http://", 300, seen)
        url = line.split("dashboard at ")[1].split()[0]
        assert url == f"http://127.0.0.1:{up_env['CALLSTREAM_DASH_PORT']}/"
        order = [line.split()[2] for line in seen if line.split()[3:4] == ["ready"]]
        assert order == ["topics", "worker", "sink", "notify", "simulate", "dashboard"]
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200 and b"callstream" in response.read()
        deadline = time.monotonic() + 180
        while _calls_in(Path(up_env["CALLSTREAM_WAREHOUSE"])) == 0:
            assert time.monotonic() < deadline, "no CDR reached the warehouse"
            assert process.poll() is None, "".join(seen)
            time.sleep(1)
        driver = chrome()
        try:
            load(driver, url)
            assert driver.find_element("css selector", "#freshness").text.startswith("Updated")
            screenshot(driver, "up-overview-live")
        finally:
            quit_chrome(driver)
        family = psutil.Process(process.pid).children(recursive=True)
        assert len(family) >= 4
    finally:
        process.send_signal(signal.SIGINT)
        try:
            rest, _ = process.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    seen.append(rest)
    assert process.returncode == 0, "".join(seen)
    assert "callstream up: stopped" in rest
    stopped = [line.split()[-1] for line in rest.splitlines() if "stopping" in line]
    assert stopped == ["dashboard", "simulate", "notify", "sink", "worker"]
    alive = [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [p.cmdline() for p in alive]
    assert {p.name for p in (tmp_path / "logs").iterdir()} == {"worker.log", "sink.log", "notify.log",
                                                                "simulate.log", "dashboard.log"}


def test_up_stops_everything_when_a_part_fails(up_env, tmp_path: Path) -> None:
    env = dict(up_env, CALLSTREAM_TARIFFS=str(tmp_path / "missing-tariffs.csv"))
    done = subprocess.run([sys.executable, "-m", "callstream.cli", "up", "--logs", str(tmp_path / "logs")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "worker exited with code 2" in done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stdout + done.stderr
    assert "cannot read tariff file" in (tmp_path / "logs" / "worker.log").read_text()


@pytest.mark.parametrize("command", ["up", "dashboard"])
def test_an_open_address_without_credentials_is_refused(command: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "callstream.cli", command, "--host", "0.0.0.0"],
                          env=dict(os.environ, CALLSTREAM_DASH_USERS="", CALLSTREAM_DASH_TOKEN=""),
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"callstream {command}: error: refusing to serve on 0.0.0.0 without credentials: add an account "
        "(callstream users add), set CALLSTREAM_DASH_USERS (user:password,...) or CALLSTREAM_DASH_TOKEN, "
        "or bind 127.0.0.1"]


@pytest.mark.parametrize("how", ["ctrl-c", "hup, stdout closed", "kill -9"])
def test_a_stop_during_start_up_stops_what_was_started(up_env, tmp_path: Path, how: str) -> None:
    """Ctrl-C; SIGHUP with stdout a closed pipe (``| tee`` gone); SIGKILL, which only Linux can answer."""
    process = subprocess.Popen([sys.executable, "-m", "callstream.cli", "up", "--logs", str(tmp_path / "logs")],
                               env=up_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    family: list[psutil.Process] = []
    try:
        _wait_line(process, "topics ready", 120, seen)
        deadline = time.monotonic() + 60
        while not psutil.Process(process.pid).children():  # the worker is starting
            assert time.monotonic() < deadline
            time.sleep(0.05)
        family = psutil.Process(process.pid).children(recursive=True)
    finally:
        if how == "ctrl-c":
            process.send_signal(signal.SIGINT)
            rest, _ = process.communicate(timeout=120)
        else:
            process.stdout.close()
            process.send_signal(signal.SIGHUP if how.startswith("hup") else signal.SIGKILL)
            process.wait(timeout=120)
            rest = ""
    try:
        if how == "kill -9":
            assert process.returncode == -signal.SIGKILL
        else:
            assert process.returncode == 0, "".join(seen) + rest
        if how == "ctrl-c":
            assert "stopping worker" in rest and "dashboard at" not in rest
        deadline = time.monotonic() + 60  # kill -9: the worker gets SIGTERM from Linux and shuts down itself
        while alive := [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]:
            assert time.monotonic() < deadline, f"left behind: {[p.cmdline() for p in alive]}"
            time.sleep(0.1)
    finally:
        for p in family:
            if p.is_running():
                p.kill()  # nothing of a failing run may outlive it
