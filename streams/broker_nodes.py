"""Where the nodes of the local broker live: addresses, directories, their server.properties.

One node (the default) keeps the layout the project always had: data, logs, pid
and ``server.properties`` directly under ``CALLSTREAM_KAFKA_DIR``, listening on
``CALLSTREAM_BOOTSTRAP`` with its controller on the next port. A cluster of
``CALLSTREAM_KAFKA_NODES`` nodes keeps each node apart under ``node-<id>/`` (the
resolved jars are shared in ``libs/``) and records its shape in
``cluster.json``, which ``status`` and ``stop`` read:

```
<kafka dir>/cluster.json    node ids, addresses, the cluster id
<kafka dir>/libs/           the broker's classpath (shared)
<kafka dir>/node-1/         data/, logs/, broker.pid, server.properties
<kafka dir>/node-2/ ...
```

Node ``i`` listens on the ``i``-th address of ``CALLSTREAM_BOOTSTRAP`` when it
lists one per node, else on the first address's port + 2(i-1); each node's
controller listens on its port + 1 (so 9092/9093, 9094/9095, 9096/9097, and
node 1 of a cluster sits where the single node would).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from common.config import Settings
from common.errors import CliError

CLUSTER_FILE = "cluster.json"


@dataclass(frozen=True)
class BrokerPaths:
    """Where one node keeps its storage, logs, pid and config; ``libs_root`` holds the jars."""

    root: Path
    libs_root: Path | None = None

    @property
    def libs(self) -> Path:
        return (self.libs_root or self.root) / "libs"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pid_file(self) -> Path:
        return self.root / "broker.pid"

    @property
    def config(self) -> Path:
        return self.root / "server.properties"

    @property
    def stdout(self) -> Path:
        return self.logs / "broker.out"

    @property
    def libs_stamp(self) -> Path:
        return self.libs / ".pom-sha256"


@dataclass(frozen=True)
class Node:
    """One combined broker + controller of the local broker."""

    node_id: int
    host: str
    port: int
    paths: BrokerPaths

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_address(entry: str) -> tuple[str, int]:
    """host:port -> (host, port); CliError (exit 2) otherwise."""
    host, sep, port = entry.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65535:
        raise CliError(f"bootstrap {entry.strip()!r} is not host:port", exit_code=2)
    return host, int(port)


def addresses(bootstrap: str, nodes: int) -> list[tuple[str, int]]:
    """Where each of ``nodes`` listens, from a bootstrap list (see the module docstring)."""
    listed = [parse_address(entry) for entry in bootstrap.split(",") if entry.strip()]
    if not listed:
        raise CliError("CALLSTREAM_BOOTSTRAP is empty", exit_code=2)
    if len(listed) != nodes:
        host, port = listed[0]
        listed = [(host, port + 2 * i) for i in range(nodes)]
    taken = [p for _, port in listed for p in (port, port + 1)]
    if len(set(taken)) != len(taken) or max(taken) > 65535:
        raise CliError(f"the {nodes} nodes need two ports each (broker, controller on the next): "
                       f"{bootstrap} does not leave room for them", exit_code=2)
    return listed


def bootstrap_of(nodes: list[Node]) -> str:
    """The bootstrap list naming every node (what clients should use)."""
    return ",".join(node.address for node in nodes)


def _cluster_file(root: Path) -> Path:
    return root / CLUSTER_FILE


def installed(root: Path) -> list[Node] | None:
    """The nodes of the cluster recorded under ``root``, or None when it holds no cluster."""
    try:
        doc = json.loads(_cluster_file(root).read_text())
    except FileNotFoundError:
        return None
    return [Node(n["node_id"], n["host"], n["port"], BrokerPaths(root / f"node-{n['node_id']}", root))
            for n in doc["nodes"]]


def cluster_id(root: Path) -> str | None:
    """The KRaft cluster id recorded for the cluster under ``root``."""
    try:
        return json.loads(_cluster_file(root).read_text()).get("cluster_id")
    except FileNotFoundError:
        return None


def record(root: Path, nodes: list[Node], cluster: str) -> None:
    """Write ``cluster.json`` (atomically) for a cluster about to be formatted."""
    doc = {"cluster_id": cluster,
           "nodes": [{"node_id": n.node_id, "host": n.host, "port": n.port} for n in nodes]}
    tmp = _cluster_file(root).with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, _cluster_file(root))


def plan(settings: Settings) -> list[Node]:
    """The nodes ``settings`` ask for; CliError when the data directory holds another shape."""
    root = Path(settings.kafka_dir).resolve()
    count = settings.kafka_nodes
    existing = installed(root)
    if count == 1:
        if existing is not None:
            raise CliError(f"{root} holds a {len(existing)}-node cluster: start it with --nodes "
                           f"{len(existing)} (CALLSTREAM_KAFKA_NODES), or use another --data-dir")
        host, port = addresses(settings.bootstrap, 1)[0]
        return [Node(1, host, port, BrokerPaths(root))]
    if existing is not None:
        if len(existing) != count:
            raise CliError(f"{root} holds a {len(existing)}-node cluster, not {count}: use "
                           f"--nodes {len(existing)} or another --data-dir")
        return existing
    if (root / "data" / "meta.properties").exists():
        raise CliError(f"{root} holds a single-node broker: use another --data-dir for a cluster")
    return [Node(i + 1, host, port, BrokerPaths(root / f"node-{i + 1}", root))
            for i, (host, port) in enumerate(addresses(settings.bootstrap, count))]


def present(settings: Settings) -> list[Node]:
    """The nodes under the data directory, whatever ``CALLSTREAM_KAFKA_NODES`` says (stop, status)."""
    root = Path(settings.kafka_dir).resolve()
    existing = installed(root)
    if existing is not None:
        return existing
    host, port = addresses(settings.bootstrap, 1)[0]
    return [Node(1, host, port, BrokerPaths(root))]


def render_config(node: Node, nodes: list[Node], replication: int, min_isr: int) -> None:
    """Write ``node``'s server.properties (its listeners, the quorum, replication)."""
    template = Path(str(resources.files("streams") / "kafka" / "server.properties.template")).read_text()
    voters = ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in nodes)
    node.paths.config.write_text(template.format(
        nodes=len(nodes), node_id=node.node_id, voters=voters, host=node.host, port=node.port,
        controller_port=node.controller_port, log_dirs=node.paths.data,
        replication=replication, min_isr=min_isr))
