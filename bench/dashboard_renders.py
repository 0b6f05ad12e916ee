"""The server's half of a dashboard page: each page's callbacks run as a user, cold, and their queries.

    python bench/dashboard_renders.py --warehouse var/bench-warehouse [--users ops,big] [--runs 3]

Where ``bench/dashboard_browser.py`` times a page in Chromium (server, network and drawing),
this runs the page's render functions in this process, over the warehouse as it is (no sink),
as the bench's users (``ops``: every portal, America/New_York; ``big``: p-00, Europe/Moscow),
with an empty result cache for each render (as after a new manifest), and prints per page and
period: the render's wall and CPU time, the size of its JSON answer (what the browser parses
and draws) and its slowest queries. The difference to the browser's figure is the browser's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import plotly.io  # noqa: E402 (the repository root is put on sys.path above)

from dashboards.accounts import User  # noqa: E402 (as above)

USERS = {"ops": User("ops", "operator", (), listen=True, tz="America/New_York"),
         "big": User("big", "portal_admin", ("p-00",), listen=True)}
PORTALS_FILE = {"p-00": {"name": "Romashka (the largest)", "tz": "Europe/Moscow", "currency": "RUB"},
                "*": {"tz": "Europe/Berlin"}}


class Timed:
    """A Data whose every query is timed (name -> [seconds]) and whose cache can be emptied."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self.times: dict[str, list[float]] = defaultdict(list)
        original = data.get

        def get(query: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(query, *args, **kwargs)
            finally:
                name = query.__qualname__ + (f"({args[0]})" if args and isinstance(args[0], str) else "")
                self.times[name].append(time.perf_counter() - started)

        data.get = get


def _size(outputs: Any) -> int:
    """Bytes of the callback's answer as Dash sends it (plotly's JSON encoder)."""
    return len(plotly.io.json.to_json_plotly(outputs))


def pages(ctx: Any) -> dict[str, Any]:
    """page -> render(period) giving every output of the page's data callbacks."""
    from dashboards.pages import alerts, calls, overview, quality, recordings, spend

    return {
        "/": lambda p: overview.render(ctx, p, []),
        "/calls": lambda p: calls.render_table(ctx, {"period": p}, None, 0)[:4],
        "/calls cost": lambda p: calls.render_table(ctx, {"period": p}, {"column": "cost", "descending": True},
                                                    0)[:4],
        "/spend": lambda p: spend.render(ctx, p, []) + spend.render_employees(ctx, p, []),
        "/recordings": lambda p: recordings.render(ctx, p, []) + recordings.render_consumers(ctx, p, []),
        "/quality": lambda p: quality.render(ctx, p, []),
        "/alerts": lambda p: alerts.render(ctx, p, []),
    }


def report(user: str, page: str, period: str, context: Any, runs: int) -> None:
    """Render ``page`` for ``period`` ``runs`` times, each with a new (empty) cache; print one line."""
    import os

    walls, cpus, timed, outputs = [], [], None, None
    for _ in range(runs):
        ctx = context()
        timed = Timed(ctx.data)
        wall, cpu = time.perf_counter(), time.process_time()
        outputs = pages(ctx)[page](period)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    slow = sorted(((statistics.median(t), q) for q, t in timed.times.items()), reverse=True)
    print(f"{user} {page:12s} {period:5s} render median {statistics.median(walls) * 1000:6.0f} ms "
          f"(cpu {statistics.median(cpus) * 1000:5.0f} ms), answer {_size(outputs) / 1024:6.0f} KiB; "
          + ", ".join(f"{q} {s * 1000:.0f}" for s, q in slow[:4]) + f"; load {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    import json
    import tempfile

    from common.config import Settings
    from dashboards.access import acting_as
    from dashboards.data import Context, Data
    from warehouse.reader import Reader

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=Path("var/bench-warehouse"))
    parser.add_argument("--users", default=",".join(USERS))
    parser.add_argument("--periods", default="30d,365d")
    parser.add_argument("--pages", default="")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        portals_file = Path(tmp) / "portals.json"
        portals_file.write_text(json.dumps(PORTALS_FILE), encoding="utf-8")
        settings = Settings.from_env({"CALLSTREAM_WAREHOUSE": str(args.warehouse),
                                      "CALLSTREAM_PORTALS": str(portals_file),
                                      "CALLSTREAM_ACCOUNTS": str(Path(tmp) / "accounts.sqlite")})
        with Reader(args.warehouse, memory_limit=f"{settings.dash_memory_mb}MiB",
                    threads=settings.dash_threads) as reader:
            for name in args.users.split(","):
                with acting_as(USERS[name]):
                    for page in pages(Context(settings, Data(reader))):
                        if args.pages and page.split()[0] not in args.pages.split(","):
                            continue
                        for period in args.periods.split(","):
                            report(name, page, period, lambda: Context(settings, Data(reader)), args.runs)

if __name__ == "__main__":
    main()
