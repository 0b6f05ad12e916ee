"""A rebuild's swap keeps the dashboard's accounts and audit log (real broker, real rebuilds).

The account store lives in the warehouse directory (``accounts.sqlite``); a swap
points the warehouse at a new generation directory, which must name the same
store, including what is written to it while the swap happens.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dashboards.accounts import Store
from streams.simulator import generate_all
from tests.integration.worker_harness import produce, settings_env

pytestmark = pytest.mark.integration

START_US = 1_795_503_600_000_000


def _rebuild(settings, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "callstream.cli", "rebuild", "--no-progress", *args],
                          env=settings_env(settings), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr


def test_rebuild_swaps_keep_users_sessions_and_the_audit_log(pipeline_settings):
    settings = pipeline_settings
    live = Path(settings.warehouse)
    messages, _ = generate_all(11, 400, 3, START_US)
    produce(settings, [(m.key, m.value) for m in messages])
    _rebuild(settings, "--to", str(live))  # a plain directory, as before the first swap
    store = Store(settings.accounts_path)
    store.add("boss", "operator", (), "correct horse battery")
    store.add("romashka", "portal_admin", ("p-00",), "another long one", listen=True)
    secret = store.secret()
    store.audit("boss", "csv_download", {"q": {"period": "30d"}})

    _rebuild(settings)  # plain directory -> link to a generation
    assert live.is_symlink()
    again = Store(live / "accounts.sqlite")
    assert [u.name for u in again.users()] == ["boss", "romashka"]
    assert again.authenticate("romashka", "another long one").portals == ("p-00",)
    assert again.secret() == secret  # sessions signed before the rebuild stay valid
    assert [e["action"] for e in again.audit_log()] == ["csv_download"]

    # Audit entries written all through the next swap: none may be lost to the old generation.
    written, stop = [], threading.Event()

    def audit_all_along() -> None:
        while not stop.is_set():
            n = len(written)
            Store(live / "accounts.sqlite").audit("boss", "recording_open", {"n": n})
            written.append(n)

    writer = threading.Thread(target=audit_all_along)
    writer.start()
    try:
        _rebuild(settings)  # link -> another generation
    finally:
        stop.set()
        writer.join()
    assert len(written) > 10
    final = Store(live / "accounts.sqlite")
    opened = sorted(e["detail"]["n"] for e in final.audit_log(limit=100_000) if e["action"] == "recording_open")
    assert opened == written
    final.audit("boss", "after", {})
    assert final.audit_log(limit=1)[0]["action"] == "after"
    assert (live / "accounts.sqlite").stat().st_mode & 0o777 == 0o600
