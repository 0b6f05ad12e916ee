"""Where a dashboard page's time goes in the browser: the server's callbacks or plotly's drawing.

    python bench/dashboard_profile.py --warehouse var/bench-warehouse [--user ops] [--loads 3]

Serves a scratch copy of the warehouse with ``callstream dashboard`` in its own process
(without ``--live`` no sink: the manifest does not change, so the dashboard's result cache is
warm after the first load; with ``--live N`` a sink fed N CDRs/s publishes all along, as in
``bench/dashboard_browser.py``), logs in as one of ``bench/dashboard_browser.py``'s users and
loads every page in headless Chromium. Per page and load: the time to the fully rendered page,
the sum and the span of the Dash callback requests (Resource Timing of
``_dash-update-component``), and the time plotly spent in ``Plotly.react``/``newPlot`` per
graph (wrapped before the page's scripts run) — the rest is the browser's other work (Dash's
renderer, layout, waiting).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard_browser import PAGES, log_in, served  # noqa: E402 (the repository root is put on sys.path above)

from tests.integration.dashboard_support import chrome, load, quit_chrome  # noqa: E402 (as above)

# Installed before any script of the page: every Plotly.react/newPlot is timed per graph id
# until its promise settles (plotly draws synchronously inside, then resolves).
WRAP_PLOTLY = """
window.__plotlyTimes = [];
(function () {
  let real;
  function wrap(name) {
    const original = real[name];
    real[name] = function (gd) {
      const t0 = performance.now();
      const id = (gd && gd.id) || (gd && gd.parentNode && gd.parentNode.id) || '?';
      const out = original.apply(this, arguments);
      const note = () => window.__plotlyTimes.push([id, name, t0, performance.now() - t0]);
      if (out && out.then) out.then(note, note); else note();
      return out;
    };
  }
  Object.defineProperty(window, 'Plotly', {configurable: true,
    get() { return real; },
    set(value) { real = value; ['react', 'newPlot'].forEach(n => { if (real && real[n]) wrap(n); }); }});
})();
"""
# Each drawn graph of the page drawn again, alone and one after the other, in a new element of
# its size: how long plotly takes for that figure (median of three), without the others.
REDRAW_JS = """
const done = arguments[arguments.length - 1];
(async function () {
  const out = {};
  for (const gd of document.querySelectorAll('#page .js-plotly-plot')) {
    const id = gd.parentNode.id || gd.id;
    const box = document.createElement('div');
    box.style.width = gd.clientWidth + 'px';
    document.body.appendChild(box);
    const times = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await Plotly.newPlot(box, JSON.parse(JSON.stringify(gd.data)), JSON.parse(JSON.stringify(gd.layout)),
                           gd._context ? {displayModeBar: gd._context.displayModeBar} : {});
      times.push(performance.now() - t0);
      Plotly.purge(box);
    }
    box.remove();
    out[id] = times.sort((a, b) => a - b)[1];
  }
  done(out);
})();
"""
CALLBACKS_JS = """
return performance.getEntriesByType('resource')
  .filter(e => e.name.includes('_dash-update-component'))
  .map(e => [e.startTime, e.responseEnd, e.responseStart - e.requestStart, e.transferSize]);
"""


def profile(driver, url: str, loads: int) -> None:
    """Print, per page, the medians of ``loads`` loads (after a warm-up)."""
    for path in PAGES:
        rows = []
        for n in range(loads + 1):
            total = load(driver, url + path)
            calls = driver.execute_script(CALLBACKS_JS)
            draws = driver.execute_script("return window.__plotlyTimes;") or []
            if n == 0:
                continue  # the warm-up: bundles into the cache, plotly compiled
            if n == 1:
                alone = driver.execute_async_script(REDRAW_JS)
                print(f"{path:12s} each graph drawn alone: {sum(alone.values()):.0f} ms: "
                      + ", ".join(f"{g} {ms:.0f}" for g, ms in sorted(alone.items(), key=lambda t: -t[1])), flush=True)
            server = sum(c[2] for c in calls)
            span = max((c[1] for c in calls), default=0.0)
            per_graph = {}
            for graph, _name, _start, ms in draws:
                per_graph[graph] = per_graph.get(graph, 0.0) + ms
            rows.append((total, span, server, sum(per_graph.values()), per_graph, len(calls),
                         sum(c[3] for c in calls)))
        def med(i: int, rows: list = rows) -> float:
            return statistics.median(r[i] for r in rows)

        graphs = {}
        for r in rows:
            for g, ms in r[4].items():
                graphs.setdefault(g, []).append(ms)
        slow = sorted(((statistics.median(v), g) for g, v in graphs.items()), reverse=True)
        print(f"{path:12s} rendered {med(0):6.0f} ms; last callback answer at {med(1):6.0f} ms; "
              f"server time of {med(5):.0f} callbacks {med(2):5.0f} ms ({med(6) / 1024:.0f} KiB); "
              f"plotly {med(3):5.0f} ms: " + ", ".join(f"{g} {ms:.0f}" for ms, g in slow[:6]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=Path("var/bench-warehouse"))
    parser.add_argument("--scratch", type=Path, default=Path("var/bench-profile-warehouse"))
    parser.add_argument("--user", default="ops")
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--live", type=float, default=0.0,
                        help="CDRs per second fed to a sink writing the scratch copy (0: none)")
    args = parser.parse_args()
    with served(args.warehouse, args.scratch, args.live, "profile") as url:
        driver = chrome()
        try:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WRAP_PLOTLY})
            log_in(driver, url, args.user)
            started = time.perf_counter()
            profile(driver, url, args.loads)
            print(f"({time.perf_counter() - started:.0f} s)")
        finally:
            quit_chrome(driver)


if __name__ == "__main__":
    main()
