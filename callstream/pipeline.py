"""What ``callstream up`` runs, in which order, and how it knows each part is ready."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

from callstream import probes
from callstream.supervisor import ChildSpec, Supervisor
from common.config import SETTINGS, Settings


def settings_env(settings: Settings, base: dict[str, str]) -> dict[str, str]:
    """``base`` with every setting written out, so each child sees exactly these settings."""
    env = dict(base)
    for setting in SETTINGS:
        value = getattr(settings, setting.name)
        if value is None:
            env.pop(setting.env, None)
        else:
            env[setting.env] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "callstream.cli", *args]


class Pipeline:
    """The broker, the topics and the children of ``callstream up``."""

    def __init__(self, settings: Settings, logs: Path, stop: threading.Event, say: Callable[[str], None],
                 *, simulate: list[str] | None, hurry: threading.Event | None = None) -> None:
        import os

        self.settings = settings
        self.stop_requested = stop
        self.say = say
        self.simulate = simulate
        self.supervisor = Supervisor(logs, settings_env(settings, dict(os.environ)), stop, say, hurry)
        self.broker_started = False
        self._stopped = False

    @property
    def url(self) -> str:
        """The dashboard's address."""
        host = self.settings.dash_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.settings.dash_port}/"

    def children(self) -> list[ChildSpec]:
        """The children in start order, each with its readiness check."""
        s = self.settings
        specs = [
            ChildSpec("worker", _command("worker"), lambda _pid: probes.group_stable(s, s.worker_group),
                      ready_timeout_s=180, stop_timeout_s=40),
            ChildSpec("sink", _command("sink"), partial(probes.sink_ready, settings=s),
                      ready_timeout_s=60, stop_timeout_s=40),
        ]
        # Notify reads alerts and the deliveries topic; it is up once it holds a connection to the broker.
        specs.append(ChildSpec("notify", _command("notify"), partial(probes.connected_to_broker, settings=s),
                               ready_timeout_s=60, stop_timeout_s=20))
        if self.simulate is not None:
            specs.append(ChildSpec("simulate", _command("simulate", *self.simulate),
                                   partial(probes.connected_to_broker, settings=s),
                                   ready_timeout_s=60, stop_timeout_s=20))
        health = self.url + "healthz"
        specs.append(ChildSpec("dashboard", _command("dashboard"), lambda _pid: probes.http_ok(health),
                               ready_timeout_s=60, stop_timeout_s=10))
        return specs

    def start(self) -> None:
        """Broker, topics, then each child once the one before it is ready (stops early on request)."""
        self._broker()
        if self.stop_requested.is_set():
            return
        self._topics()
        for spec in self.children():
            if self.stop_requested.is_set():
                return
            child = self.supervisor.start(spec)
            if not self.stop_requested.is_set():
                self.say(f"{spec.name} ready (pid {child.pid}, log {child.log})")

    def _broker(self) -> None:
        from streams import broker

        if broker.answers_metadata(self.settings):
            self.say(f"using the broker at {self.settings.bootstrap}")
            return
        self.say(f"no broker answers at {self.settings.bootstrap}: starting the local one "
                 f"({self.settings.kafka_dir})")
        pid, self.broker_started = broker.start(self.settings, die_with_parent=True)
        self.say(f"broker ready (pid {pid})")

    def _topics(self) -> None:
        from notify.topics import notify_topics
        from streams import topics
        from streams.worker import worker_topics

        specs = worker_topics(self.settings) + notify_topics(self.settings)
        topics.ensure_topics(self.settings, specs)
        topics.wait_listed(self.settings, [spec.name for spec in specs])
        self.say(f"topics ready ({', '.join(spec.name for spec in specs[:4])}, …)")

    def stop(self) -> None:
        """Stop the children in reverse order, then the broker if this pipeline started it (idempotent).

        The broker is stopped even if stopping a child failed.
        """
        if self._stopped:
            return
        self._stopped = True
        try:
            self.supervisor.stop()
        finally:
            if self.broker_started:
                from streams import broker

                try:
                    self.say("stopping the broker")
                except Exception:  # noqa: BLE001 - a line nobody can read must not keep the broker running
                    pass
                broker.stop(self.settings)
