"""Fixtures of the unit tests: pure means no network.

Every unit test runs with outgoing connections refused, so a test that would
need a broker, an HTTP or SMTP server fails at once with a clear reason
instead of passing on a machine where one happens to answer. Local
subprocesses (the linters) and in-process test clients are unaffected.
"""

from __future__ import annotations

import socket

import pytest


class NetworkInUnitTest(RuntimeError):
    """A unit test tried to connect somewhere: it belongs in tests/integration."""


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every outgoing connection for the duration of one unit test."""
    def refuse(sock: socket.socket, address: object, *args: object) -> None:
        raise NetworkInUnitTest(f"unit tests are pure: connection to {address!r} refused")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
