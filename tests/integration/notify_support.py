"""Real receivers for notify's tests: an HTTP server (json:// and bitrix24http:// channels), an SMTP
server (aiosmtpd, mailto://), and ``callstream notify`` as a subprocess."""

from __future__ import annotations

import email
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from common.config import Settings
from tests.integration.worker_harness import settings_env

ID_LINE = re.compile(r"^(?:Alert: |  )(\S+:\S+) \((open|resolved|retracted)\)", re.M)
KEY_LINE = re.compile(r"Idempotency key: ([0-9a-f]{32})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pairs_in(text: str) -> list[tuple[str, str]]:
    """(alert_id, state) pairs a message body lists."""
    found = []
    for line in text.splitlines():
        if line.startswith("Alert: "):
            alert_id, _, rest = line[7:].partition(" (state: ")
            found.append((alert_id, rest.rstrip(")")))
        else:
            match = ID_LINE.match(line)
            if match and line.startswith("  "):
                found.append((match.group(1), match.group(2)))
    return found


class HttpReceiver:
    """Records every POST; ``script`` gives the status codes to answer in turn (then 200)."""

    def __init__(self, script: list[int] | None = None, answer: Callable[[str, bytes], tuple[int, bytes]] | None = None,
                 port: int = 0):
        self.requests: list[dict[str, Any]] = []
        self.script = list(script or [])
        self.answer = answer
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    code = receiver.script.pop(0) if receiver.script else 200
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                              "code": code, "at": time.time()})
                payload = b"{}"
                if receiver.answer is not None and code == 200:
                    code, payload = receiver.answer(self.path, body)
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self) -> list[dict[str, Any]]:
        """The JSON bodies of the requests answered 200."""
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests if r["code"] == 200]

    def pairs(self) -> list[tuple[str, str]]:
        """(alert_id, state) of every accepted message, duplicates kept."""
        return [p for body in self.accepted() for p in pairs_in(body.get("message", ""))]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on localhost that keeps every message."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.Message] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
                receiver.messages.append(email.message_from_bytes(envelope.content))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def url(self) -> str:
        return (f"mailto://127.0.0.1:{self.port}?from=notify@example.com&to=admin@example.com"
                "&mode=insecure")

    def pairs(self) -> list[tuple[str, str]]:
        found = []
        for message in self.messages:
            part = message.get_payload(decode=True) if not message.is_multipart() else \
                message.get_payload(0).get_payload(decode=True)
            found += pairs_in(part.decode("utf-8", "replace"))
        return found

    def close(self) -> None:
        self.controller.stop()


class NotifyProcess:
    """``callstream notify`` in its own session, logging to a file."""

    def __init__(self, settings: Settings, log_path: Path, *args: str, **env: str) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "callstream.cli", "notify", "--log-level", "info", *args],
                                     env=settings_env(settings, **env), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout_s: float = 20.0) -> int:
        self.kill(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait(10)
        return self.proc.returncode

    def close(self) -> None:
        self.kill()
        try:
            self.proc.wait(10)
        finally:
            self._log.close()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, check: Callable[[], None] | None = None):
    """Poll ``condition`` until true; AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check is not None:
            check()
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def alert(alert_id: str, kind: str, portal: str, *, call_id: str | None = None, state: str | None = None,
          ts: str = "2026-12-03T10:00:00.000Z", **detail: Any) -> tuple[bytes, bytes]:
    """(key, value) of an alert message as the worker writes one."""
    body = dict(detail)
    if state is not None:
        body["state"] = state
    value = {"alert_id": alert_id, "type": kind, "portal_id": portal, "call_id": call_id, "ts": ts, "detail": body}
    return portal.encode(), json.dumps(value).encode()
