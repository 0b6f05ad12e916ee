"""Free loopback ports for brokers the tests start beside the session's."""

from __future__ import annotations

import socket


def free_port_pair() -> int:
    """A free port whose next port is free too: a broker needs both (its listener and its controller)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with socket.socket() as second:
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")
