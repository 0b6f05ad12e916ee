"""A local Apache Kafka (KRaft) of one or more nodes, each a JVM from Maven artifacts.

No tarball and no Docker: Maven resolves ``org.apache.kafka:kafka_2.13`` and
its runtime dependencies (``streams/kafka/pom.xml``) into the local Maven
repository, the classpath is copied under the data directory, and each node
runs as ``java kafka.Kafka server.properties`` in its own session so that it
outlives the command that started it. Where the nodes live and listen is
:mod:`streams.broker_nodes`; one node (the default) is the layout and the
behaviour the project always had.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from importlib import resources
from pathlib import Path

from common.config import Settings
from common.errors import CliError
from streams.broker_nodes import BrokerPaths, Node, bootstrap_of, parse_address, plan, present, render_config

__all__ = ["BrokerPaths", "answers_metadata", "node_status", "port_open", "split_bootstrap", "start",
           "status", "stop"]

_MAIN_CLASS = "kafka.Kafka"
_STORAGE_TOOL = "kafka.tools.StorageTool"


def _resource(name: str) -> Path:
    return Path(str(resources.files("streams") / "kafka" / name))


def split_bootstrap(bootstrap: str) -> tuple[str, int]:
    """The first host:port of a bootstrap list; the local broker listens there."""
    return parse_address(bootstrap.split(",")[0])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def java_executable(settings: Settings) -> str:
    """The java binary: CALLSTREAM_JAVA_HOME, then JAVA_HOME, then PATH."""
    for home in (settings.java_home, os.environ.get("JAVA_HOME")):
        if home and (Path(home) / "bin" / "java").exists():
            return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise CliError("java not found: install a JDK 17+ or set CALLSTREAM_JAVA_HOME")
    return found


def resolve_jars(paths: BrokerPaths, *, quiet: bool = True) -> None:
    """Copy the broker's runtime classpath from Maven into ``libs/`` (cached by pom hash)."""
    pom = _resource("pom.xml")
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if paths.libs_stamp.exists() and paths.libs_stamp.read_text() == digest:
        return
    mvn = shutil.which("mvn")
    if not mvn:
        raise CliError("mvn not found: Maven is needed once to fetch the Kafka jars")
    if paths.libs.exists():
        shutil.rmtree(paths.libs)
    command = [mvn, "-B", "-f", str(pom), "dependency:copy-dependencies",
               f"-DoutputDirectory={paths.libs}", "-DincludeScope=runtime"]
    if quiet:
        command.insert(1, "-q")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise CliError("maven could not resolve the Kafka jars: " + " | ".join(tail))
    paths.libs_stamp.write_text(digest)


def _java_command(settings: Settings, paths: BrokerPaths, main: str, *args: str) -> list[str]:
    return [java_executable(settings), "-cp", f"{paths.libs}/*",
            f"-Dlog4j2.configurationFile={_resource('log4j2.yaml')}",
            f"-Dkafka.logs.dir={paths.logs}", main, *args]


def new_cluster_id(settings: Settings, paths: BrokerPaths) -> str:
    """A fresh KRaft cluster id (Kafka's own ``random-uuid``)."""
    return subprocess.run(_java_command(settings, paths, _STORAGE_TOOL, "random-uuid"),
                          capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]


def format_storage(settings: Settings, paths: BrokerPaths, cluster: str | None = None) -> None:
    """Format KRaft storage once (every node of a cluster with one id); a formatted directory is left alone."""
    if (paths.data / "meta.properties").exists():
        return
    paths.data.mkdir(parents=True, exist_ok=True)
    cluster = cluster or new_cluster_id(settings, paths)
    done = subprocess.run(
        _java_command(settings, paths, _STORAGE_TOOL, "format", "-t", cluster, "-c", str(paths.config)),
        capture_output=True, text=True)
    if done.returncode != 0:
        raise CliError("kafka storage format failed: " + (done.stdout + done.stderr).strip()[-300:])


def read_pid(paths: BrokerPaths) -> int | None:
    """The broker's pid if its pid file names a live process, else None."""
    try:
        pid = int(paths.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    if _is_zombie(pid) or not _is_kafka(pid):
        return None
    return pid


def _is_zombie(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child that exited
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, IndexError):
        return True


def _is_kafka(pid: int) -> bool:
    # A stale pid file may name a pid the system has since given to another
    # program. An empty command line is a process in the middle of an exec (the
    # java launcher can re-exec itself): not a stranger, so it counts.
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            args = cmdline.read()
    except FileNotFoundError:
        return False
    return not args or _MAIN_CLASS.encode() in args.split(b"\0")


def answers_metadata(settings: Settings, timeout_s: float = 5.0, *, brokers: int = 1) -> bool:
    """True when the broker at the (first) bootstrap address answers a metadata request and the
    cluster lists at least ``brokers`` live brokers."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    host, port = split_bootstrap(settings.bootstrap)
    if not port_open(host, port):
        return False
    try:
        admin = KafkaAdminClient(bootstrap_servers=f"{host}:{port}",
                                 request_timeout_ms=int(timeout_s * 1000),
                                 **settings.kafka_client_options())
    except (KafkaError, OSError, ValueError):
        return False
    try:
        live = [b for b in admin.describe_cluster()["brokers"] if not b.get("is_fenced")]
        return len(live) >= brokers
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def start(settings: Settings, *, timeout_s: float = 90.0, die_with_parent: bool = False) -> tuple[int, bool]:
    """Start every node of the local broker (idempotent). Returns (pid of node 1, any started now).

    ``die_with_parent``: Linux sends the nodes SIGTERM if this process dies without
    stopping them (``callstream up``); otherwise they outlive this process.
    """
    states = start_nodes(settings, timeout_s=timeout_s, die_with_parent=die_with_parent)
    return states[0][1], any(started for _, _, started in states)


def start_nodes(settings: Settings, *, timeout_s: float = 90.0,
                die_with_parent: bool = False) -> list[tuple[Node, int, bool]]:
    """Start the nodes ``settings`` ask for that are not running, wait until all answer.

    Returns (node, pid, started now) per node. A node started here that does not
    become ready is killed again: no half-started cluster is left behind by this call.
    """
    from streams.topics import replication_for

    nodes = plan(settings)
    running = {node.node_id: read_pid(node.paths) for node in nodes}
    missing = [node for node in nodes if running[node.node_id] is None]
    for node in missing:
        for port in (node.port, node.controller_port):
            if port_open(node.host, port):
                raise CliError(f"{node.host}:{port} is already taken by another process (not our broker "
                               f"in {node.paths.root}); stop it or set CALLSTREAM_BOOTSTRAP")
    launched: dict[int, subprocess.Popen] = {}
    try:
        if missing:
            _prepare(settings, nodes, missing, *replication_for(settings, len(nodes)))
            for node in missing:
                launched[node.node_id] = _launch(settings, node, die_with_parent)
        _wait_ready(settings, nodes, launched, timeout_s)
    except BaseException:
        # Never leave behind a node that this call started but could not use.
        for node in missing:
            process = launched.get(node.node_id)
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            node.paths.pid_file.unlink(missing_ok=True)
        raise
    return [(node, launched[node.node_id].pid if node.node_id in launched else running[node.node_id],
             node.node_id in launched) for node in nodes]


def _prepare(settings: Settings, nodes: list[Node], missing: list[Node], replication: int,
             min_isr: int) -> None:
    """Jars, configs and formatted storage for the nodes about to start."""
    from streams import broker_nodes

    root = Path(settings.kafka_dir).resolve()
    for node in missing:
        for directory in (node.paths.root, node.paths.logs):
            directory.mkdir(parents=True, exist_ok=True)
    resolve_jars(nodes[0].paths)
    for node in missing:
        render_config(node, nodes, replication, min_isr)
    cluster = None
    if len(nodes) > 1:  # every node formatted with the one id the cluster file keeps
        cluster = broker_nodes.cluster_id(root) or new_cluster_id(settings, nodes[0].paths)
        broker_nodes.record(root, nodes, cluster)
    for node in missing:
        format_storage(settings, node.paths, cluster)


def _launch(settings: Settings, node: Node, die_with_parent: bool) -> subprocess.Popen:
    """Start one node's JVM in its own session with a bounded heap; its pid file written."""
    paths = node.paths
    heap = f"-Xmx{settings.kafka_heap_mb}m"
    command = _java_command(settings, paths, _MAIN_CLASS, str(paths.config))
    command[1:1] = [heap, f"-Xms{min(256, settings.kafka_heap_mb)}m", "-XX:+UseG1GC",
                    "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"]
    if die_with_parent:
        from common.deathsig import tied_to_this_process

        command = tied_to_this_process(command)
    with open(paths.stdout, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    paths.pid_file.write_text(str(process.pid))
    return process


def _wait_ready(settings: Settings, nodes: list[Node], launched: dict[int, subprocess.Popen],
                timeout_s: float) -> None:
    """Poll until every node answers and the cluster lists all of them; fail when one exits."""
    deadline = time.monotonic() + timeout_s
    pending = list(nodes)
    while time.monotonic() < deadline:
        for node in nodes:
            process = launched.get(node.node_id)
            alive = process.poll() is None if process is not None else read_pid(node.paths) is not None
            if not alive:
                raise CliError(f"the broker{_which(node, nodes)} exited during start-up; see {_log_hint(node.paths)}")
        pending = [node for node in pending
                   if not answers_metadata(settings.replace(bootstrap=node.address), brokers=len(nodes))]
        if not pending:
            return
        time.sleep(0.5)
    raise CliError(f"the broker{_which(pending[0], nodes)} did not answer within {timeout_s:.0f} s; "
                   f"see {_log_hint(pending[0].paths)}")


def _which(node: Node, nodes: list[Node]) -> str:
    return f" node {node.node_id}" if len(nodes) > 1 else ""


def _log_hint(paths: BrokerPaths) -> str:
    server_log = paths.logs / "server.log"
    return str(server_log if server_log.exists() else paths.stdout)


def stop(settings: Settings, *, timeout_s: float = 60.0) -> bool:
    """Stop every node cleanly (SIGTERM, then SIGKILL after ``timeout_s``). False if none ran."""
    nodes = present(settings)
    pids = {node.node_id: read_pid(node.paths) for node in nodes}
    for node in nodes:
        if pids[node.node_id] is None:
            node.paths.pid_file.unlink(missing_ok=True)
    alive = [node for node in nodes if pids[node.node_id] is not None]
    # All at once: each controlled shutdown then overlaps the others' (a cluster stops in
    # about the time one node takes), and the quorum stays until the last node leaves.
    for node in alive:
        os.kill(pids[node.node_id], signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(read_pid(n.paths) is not None for n in alive):
        time.sleep(0.2)
    for node in alive:
        if read_pid(node.paths) is not None:
            os.killpg(pids[node.node_id], signal.SIGKILL)
            while read_pid(node.paths) is not None:
                time.sleep(0.1)
        node.paths.pid_file.unlink(missing_ok=True)
    return bool(alive)


def node_status(settings: Settings) -> list[tuple[Node, int | None]]:
    """Each node of the local broker with the pid of its running JVM, or None."""
    return [(node, read_pid(node.paths)) for node in present(settings)]


def status(settings: Settings) -> int | None:
    """The pid of node 1 when every node of the local broker runs, or None."""
    states = node_status(settings)
    return states[0][1] if all(pid is not None for _, pid in states) else None


def cluster_bootstrap(settings: Settings) -> str:
    """The bootstrap list of the local broker's nodes (every node named)."""
    return bootstrap_of(plan(settings))
