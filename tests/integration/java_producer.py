"""A producer that is not ours: the official Java client, from the local broker's own jars.

``java/ScriptedProducer.java`` is compiled once per test session with ``javac``
against ``kafka-clients`` (the ``java_producer`` fixture of ``conftest.py``)
and run with ``java``: it sends the records of a script with any
``compression.type``, optionally as transactions that commit or abort, and
can hold a transaction open. :func:`script` writes such scripts from
(key, value) pairs grouped into calls.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.config import CODECS, Settings

__all__ = ["CODECS", "JavaProducer", "kafka_libs", "records", "transactions"]

SOURCE = Path(__file__).resolve().parent / "java" / "ScriptedProducer.java"
ROOT = Path(__file__).resolve().parents[2]

Message = tuple[bytes | None, bytes | None]  # key, value


def kafka_libs(settings: Settings) -> Path:
    """The broker's jars: the running local broker's, else resolved by the broker module.

    A machine on which ``callstream broker start`` ran (CI does) has them under
    ``CALLSTREAM_KAFKA_DIR``; otherwise Maven resolves them once into the test
    broker's directory, exactly as the broker module does for a broker.
    """
    from streams.broker import BrokerPaths, resolve_jars

    paths = BrokerPaths(Path(settings.kafka_dir).resolve())
    if not any(paths.libs.glob("kafka-clients-*.jar")):
        paths = BrokerPaths(Path(os.environ.get("CALLSTREAM_TEST_KAFKA_DIR",
                                                str(ROOT / "var" / "test-kafka"))).resolve())
        paths.root.mkdir(parents=True, exist_ok=True)
        resolve_jars(paths)
    return paths.libs


def _tool(settings: Settings, name: str) -> str:
    from streams.broker import java_executable

    found = Path(java_executable(settings)).parent / name
    if found.exists():
        return str(found)
    on_path = shutil.which(name)
    assert on_path, f"{name} not found: the interoperability tests need a JDK 17+"
    return on_path


def _field(data: bytes | None) -> str:
    return "-" if data is None else base64.b64encode(data).decode("ascii")


def records(messages: Iterable[Message]) -> list[str]:
    """Script lines sending ``messages`` in order."""
    return [f"R {_field(key)} {_field(value)}" for key, value in messages]


def transactions(groups: Sequence[Sequence[Message]], aborted: Iterable[int]) -> list[str]:
    """One transaction per group of messages; those whose index is in ``aborted`` abort."""
    aborted = set(aborted)
    lines: list[str] = []
    for index, group in enumerate(groups):
        lines += ["BEGIN", *records(group), "ABORT" if index in aborted else "COMMIT"]
    return lines


@dataclass(frozen=True)
class JavaProducer:
    """The compiled ScriptedProducer and how to run it."""

    java: str
    classpath: str

    @classmethod
    def compile(cls, settings: Settings, workdir: Path) -> JavaProducer:
        """``javac`` the producer against the broker's kafka-clients jar into ``workdir``."""
        libs = kafka_libs(settings)
        classes = workdir / "classes"
        classes.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([_tool(settings, "javac"), "-d", str(classes), "-cp", f"{libs}/*",
                               str(SOURCE)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return cls(_tool(settings, "java"), f"{libs}/*{os.pathsep}{classes}")

    def command(self, settings: Settings, topic: str, compression: str, script_path: Path,
                transactional_id: str | None = None) -> list[str]:
        args = [self.java, "-Xmx128m", "-cp", self.classpath, "ScriptedProducer",
                settings.bootstrap, topic, compression, str(script_path)]
        return args + ([transactional_id] if transactional_id else [])

    def run(self, settings: Settings, topic: str, compression: str, lines: list[str], workdir: Path,
            transactional_id: str | None = None, timeout: float = 120) -> int:
        """Run one script to its end; the number of records sent (all acknowledged)."""
        path = _write(workdir, lines)
        done = subprocess.run(self.command(settings, topic, compression, path, transactional_id),
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
        return int(done.stdout.split()[-1])

    def start(self, settings: Settings, topic: str, compression: str, lines: list[str],
              workdir: Path, transactional_id: str) -> subprocess.Popen:
        """Start a script that holds at ``PAUSE``; returns once it says ``paused``.

        Write a line to its stdin to let it go on.
        """
        path = _write(workdir, lines)
        proc = subprocess.Popen(self.command(settings, topic, compression, path, transactional_id),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        line = proc.stdout.readline()
        if line.strip() != "paused":
            proc.kill()
            _, err = proc.communicate(timeout=30)
            raise AssertionError(f"the Java producer did not pause: {line!r} {err[-4000:]}")
        return proc


def _write(workdir: Path, lines: list[str]) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"script-{len(list(workdir.glob('script-*.txt')))}.txt"
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path
