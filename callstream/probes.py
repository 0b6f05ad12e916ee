"""Readiness checks of the pipeline's parts, as ``callstream up`` waits for them.

Each answers "does it serve yet?" from outside the process, the way an
operator would check: the broker answers metadata, the topics are listed,
the worker's consumer group is Stable with members, the sink holds the
warehouse's writer lock and is connected to the broker, the dashboard
answers HTTP.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from common.config import Settings


def _admin(settings: Settings):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=settings.bootstrap, request_timeout_ms=5000,
                            **settings.kafka_client_options())


def group_stable(settings: Settings, group: str) -> bool:
    """True when the consumer group is Stable (partitions assigned) with at least one member."""
    admin = _admin(settings)
    try:
        described = admin.describe_groups([group]).get(group) or {}
    finally:
        admin.close()
    return described.get("group_state") == "Stable" and bool(described.get("members"))


def _broker_ports(settings: Settings) -> set[int]:
    ports = set()
    for address in settings.bootstrap.split(","):
        _, _, port = address.strip().rpartition(":")
        if port.isdigit():
            ports.add(int(port))
    return ports


def connected_to_broker(pid: int, settings: Settings) -> bool:
    """True when process ``pid`` has an established TCP connection to a bootstrap port."""
    import psutil

    ports = _broker_ports(settings)
    connections = psutil.Process(pid).net_connections(kind="tcp")
    return any(c.status == psutil.CONN_ESTABLISHED and c.raddr and c.raddr.port in ports for c in connections)


def holds_open(pid: int, path: Path) -> bool:
    """True when process ``pid`` has ``path`` open (the warehouse writer holds its lock file open)."""
    import psutil

    target = str(path.resolve())
    return any(f.path == target for f in psutil.Process(pid).open_files())


def sink_ready(pid: int, settings: Settings) -> bool:
    """The sink is writing: it holds the writer lock and consumes from the broker."""
    from warehouse.layout import LOCK

    return holds_open(pid, Path(settings.warehouse) / LOCK) and connected_to_broker(pid, settings)


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """True when ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - our own URL
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
