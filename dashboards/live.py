"""The data stamp a page renders from, held while a render is in flight.

The freshness callback (app.py) runs at every tick of the refresh interval and
puts the newest published manifest's sequence number in the ``seq-next`` store.
Every page's callbacks take the ``seq`` store as an input, so a new stamp there
re-renders the page on the newer data. A live pipeline publishes at every flush,
hence a new stamp at nearly every tick; Dash drops the result of a callback whose
input changed while it ran, and the new render starts on an empty per-manifest
cache. A page whose render outlasts the tick would never land.

So ``seq-next`` reaches ``seq`` only while nothing of the page is loading: the
render in flight lands (on the data it started with, at most a render old), then
the next tick moves the page to the newest stamp. The badge keeps telling the
age of the newest data all along. A filter change still restarts a render at
once: that is the user's own request.
"""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State

# Loading parts of the page slot: Dash marks a component whose callback is pending with
# data-dash-is-loading (html components) or dash-graph--pending (graphs); the page
# slot itself while the route callback builds it.
BUSY_SELECTOR = "#page[data-dash-is-loading], #page [data-dash-is-loading], #page .dash-graph--pending"

HOLD_JS = (
    "function (next, _tick, current) {\n"
    "    const skip = window.dash_clientside.no_update;\n"
    "    if (next === null || next === undefined || next === current) return skip;\n"
    f"    return document.querySelector('{BUSY_SELECTOR}') ? skip : next;\n"
    "}"
)


def install(app: Any) -> None:
    """Copy ``seq-next`` to ``seq`` in the browser, when it changes or at a tick, unless the page
    is rendering."""
    app.clientside_callback(HOLD_JS, Output("seq", "data"), Input("seq-next", "data"),
                            Input("tick", "n_intervals"), State("seq", "data"), prevent_initial_call=True)
