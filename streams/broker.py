"""A local single-node Apache Kafka (KRaft) run as a JVM from Maven artifacts.

No tarball and no Docker: Maven resolves ``org.apache.kafka:kafka_2.13`` and
its runtime dependencies (``streams/kafka/pom.xml``) into the local Maven
repository, the classpath is copied under the data directory, and the broker
runs as ``java kafka.Kafka server.properties`` in its own session so that it
outlives the command that started it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from callstream.config import Settings
from callstream.errors import CliError

_MAIN_CLASS = "kafka.Kafka"
_STORAGE_TOOL = "kafka.tools.StorageTool"


@dataclass(frozen=True)
class BrokerPaths:
    """Where one local broker keeps its jars, storage, logs and pid."""

    root: Path

    @property
    def libs(self) -> Path:
        return self.root / "libs"

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


def _resource(name: str) -> Path:
    return Path(str(resources.files("streams") / "kafka" / name))


def split_bootstrap(bootstrap: str) -> tuple[str, int]:
    """The first host:port of a bootstrap list; the local broker listens there."""
    first = bootstrap.split(",")[0].strip()
    host, sep, port = first.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise CliError(f"bootstrap {first!r} is not host:port", exit_code=2)
    return host, int(port)


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


def render_config(paths: BrokerPaths, host: str, port: int) -> None:
    """Write server.properties for this data directory and listener."""
    template = _resource("server.properties.template").read_text()
    paths.config.write_text(template.format(
        host=host, port=port, controller_port=port + 1, log_dirs=paths.data))


def _java_command(settings: Settings, paths: BrokerPaths, main: str, *args: str) -> list[str]:
    return [java_executable(settings), "-cp", f"{paths.libs}/*",
            f"-Dlog4j2.configurationFile={_resource('log4j2.yaml')}",
            f"-Dkafka.logs.dir={paths.logs}", main, *args]


def format_storage(settings: Settings, paths: BrokerPaths) -> None:
    """Format KRaft storage once; a formatted directory is left alone."""
    if (paths.data / "meta.properties").exists():
        return
    paths.data.mkdir(parents=True, exist_ok=True)
    uuid = subprocess.run(_java_command(settings, paths, _STORAGE_TOOL, "random-uuid"),
                          capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    done = subprocess.run(
        _java_command(settings, paths, _STORAGE_TOOL, "format", "-t", uuid, "-c", str(paths.config)),
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


def answers_metadata(settings: Settings, timeout_s: float = 5.0) -> bool:
    """True when a broker at the bootstrap address answers a metadata request."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    host, port = split_bootstrap(settings.bootstrap)
    if not port_open(host, port):
        return False
    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap,
                                 request_timeout_ms=int(timeout_s * 1000),
                                 **settings.kafka_client_options())
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.describe_cluster()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def start(settings: Settings, *, timeout_s: float = 90.0, die_with_parent: bool = False) -> tuple[int, bool]:
    """Start the broker (idempotent). Returns (pid, started_now).

    ``die_with_parent``: Linux sends the broker SIGTERM if this process dies without
    stopping it (``callstream up``); otherwise the broker outlives this process.
    """
    paths = BrokerPaths(Path(settings.kafka_dir).resolve())
    running = read_pid(paths)
    if running is not None:
        _wait_ready(settings, paths, lambda: read_pid(paths) is not None, timeout_s)
        return running, False
    host, port = split_bootstrap(settings.bootstrap)
    if port_open(host, port):
        raise CliError(f"{host}:{port} is already taken by another process (not our broker in "
                       f"{paths.root}); stop it or set CALLSTREAM_BOOTSTRAP")
    for directory in (paths.root, paths.logs):
        directory.mkdir(parents=True, exist_ok=True)
    resolve_jars(paths)
    render_config(paths, host, port)
    format_storage(settings, paths)
    heap = f"-Xmx{settings.kafka_heap_mb}m"
    command = _java_command(settings, paths, _MAIN_CLASS, str(paths.config))
    command[1:1] = [heap, f"-Xms{min(256, settings.kafka_heap_mb)}m", "-XX:+UseG1GC",
                    "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"]
    if die_with_parent:
        from callstream.deathsig import tied_to_this_process

        command = tied_to_this_process(command)
    with open(paths.stdout, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    paths.pid_file.write_text(str(process.pid))
    try:
        _wait_ready(settings, paths, lambda: process.poll() is None, timeout_s)
    except CliError:
        # Never leave behind a broker that this call started but could not use.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        paths.pid_file.unlink(missing_ok=True)
        raise
    return process.pid, True


def _wait_ready(settings: Settings, paths: BrokerPaths, alive, timeout_s: float) -> None:
    """Poll until the broker answers; ``alive()`` says whether its process still runs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            raise CliError(f"the broker exited during start-up; see {_log_hint(paths)}")
        if answers_metadata(settings):
            return
        time.sleep(0.5)
    raise CliError(f"the broker did not answer within {timeout_s:.0f} s; see {_log_hint(paths)}")


def _log_hint(paths: BrokerPaths) -> str:
    server_log = paths.logs / "server.log"
    return str(server_log if server_log.exists() else paths.stdout)


def stop(settings: Settings, *, timeout_s: float = 60.0) -> bool:
    """Stop the broker cleanly (SIGTERM, then SIGKILL after timeout). False if none ran."""
    paths = BrokerPaths(Path(settings.kafka_dir).resolve())
    pid = read_pid(paths)
    if pid is None:
        paths.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and read_pid(paths) is not None:
        time.sleep(0.2)
    if read_pid(paths) is not None:
        os.killpg(pid, signal.SIGKILL)
        while read_pid(paths) is not None:
            time.sleep(0.1)
    paths.pid_file.unlink(missing_ok=True)
    return True


def status(settings: Settings) -> int | None:
    """The pid of the running local broker, or None."""
    return read_pid(BrokerPaths(Path(settings.kafka_dir).resolve()))
