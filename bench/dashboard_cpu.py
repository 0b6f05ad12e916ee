"""Where the browser's CPU goes during a page load or a filter change: JavaScript self time per script.

    python bench/dashboard_cpu.py --warehouse var/bench-warehouse --user big --path /spend
    python bench/dashboard_cpu.py --warehouse var/bench-warehouse --user big --path /calls \\
        --action "document.querySelector('#calls-grid th[data-dash-column=\\"cost\\"] .column-header--sort').click()"

Serves a scratch copy of the warehouse as ``bench/dashboard_browser.py`` does (``--live N``: a sink
writing N CDRs/s), logs in as one of its users and, after two warm-up loads, samples Chromium's
CPU profiler (DevTools protocol) over ``--runs`` page loads (or, with ``--action``, over the
filter change made after each load). Prints the time to the fully rendered page, the Dash
callback requests of the last run (output, sent and answered, ms from the start), and the
median self time per script (plotly.min.js, dash_renderer, react-dom, ...) and per function:
whether a page waits for the server, for plotly's drawing or for Dash's renderer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard_browser import log_in, served  # noqa: E402 (the repository root is put on sys.path above)

from tests.integration.dashboard_support import change_and_wait, chrome, load, quit_chrome  # noqa: E402 (as above)

# Every Dash callback request: [output, sent, answered] in the page's clock (installed before
# the page's scripts run, so a page load's requests are seen too).
WATCH_FETCH = """
window.__callstreamRequests = [];
const realFetch = window.fetch;
window.fetch = function (url, options) {
  const sent = performance.now();
  let output = String(url).split('/').pop();
  try { output = JSON.parse(options.body).output.slice(0, 48); } catch (e) {}
  const answer = realFetch.apply(this, arguments);
  answer.then(() => window.__callstreamRequests.push([output, Math.round(sent), Math.round(performance.now())]));
  return answer;
};
"""


def _self_times(profile: dict) -> tuple[Counter, Counter]:
    """(ms per script file, ms per function) of one CPU profile."""
    nodes = {node["id"]: node["callFrame"] for node in profile["nodes"]}
    scripts, functions = Counter(), Counter()
    for node, delta in zip(profile["samples"], profile["timeDeltas"]):
        frame = nodes[node]
        script = frame["url"].rsplit("/", 1)[-1].split("?")[0] or frame["functionName"] or "(native)"
        scripts[script] += delta / 1000
        functions[f"{frame['functionName'] or '(anonymous)'} {script}:{frame['lineNumber']}"] += delta / 1000
    return scripts, functions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=Path("var/bench-warehouse"))
    parser.add_argument("--scratch", type=Path, default=Path("var/bench-cpu-warehouse"))
    parser.add_argument("--user", default="big")
    parser.add_argument("--path", default="/spend")
    parser.add_argument("--action", default=None, help="JavaScript of a filter change to profile instead of the load")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--live", type=float, default=0.0, help="CDRs per second fed to a sink (0: none)")
    args = parser.parse_args()
    with served(args.warehouse, args.scratch, args.live, "cpu") as url:
        driver = chrome()
        try:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_FETCH})
            log_in(driver, url, args.user)
            for _ in range(2):
                load(driver, url + args.path)  # bundles cached, plotly compiled
            driver.execute_cdp_cmd("Profiler.enable", {})
            driver.execute_cdp_cmd("Profiler.setSamplingInterval", {"interval": 200})
            totals, per_script, per_function = [], [], []
            for _ in range(args.runs):
                if args.action:
                    load(driver, url + args.path)
                    driver.execute_script("window.__callstreamRequests = [];")
                    driver.execute_cdp_cmd("Profiler.start", {})
                    totals.append(change_and_wait(driver, args.action))
                else:
                    driver.execute_cdp_cmd("Profiler.start", {})
                    totals.append(load(driver, url + args.path))
                scripts, functions = _self_times(driver.execute_cdp_cmd("Profiler.stop", {})["profile"])
                per_script.append(scripts)
                per_function.append(functions)
            requests = sorted(driver.execute_script("return window.__callstreamRequests;"), key=lambda r: r[1])
        finally:
            quit_chrome(driver)

    def medians(runs: list[Counter]) -> list[tuple[float, str]]:
        keys = set().union(*runs)
        return sorted(((statistics.median(r.get(k, 0.0) for r in runs), k) for k in keys), reverse=True)

    print(f"{args.path} {'change' if args.action else 'load'} as {args.user}: rendered "
          + ", ".join(f"{t:.0f}" for t in totals) + " ms")
    print("callbacks of the last run (output, sent, answered; ms): "
          + "; ".join(f"{o} {s}-{a}" for o, s, a in requests))
    print("self time per script (median ms): " + ", ".join(f"{k} {ms:.0f}" for ms, k in medians(per_script)[:10]))
    for ms, name in medians(per_function)[:15]:
        print(f"  {ms:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
