"""One module per page; each has NAME, PATH, TITLE, ``layout(ctx)`` and ``register(app, ctx)``.

Callback bodies are plain functions of the context and the control values
(``render`` and friends), registered by ``register``: tests call them directly.
"""

from dashboards.pages import alerts, audit, calls, overview, quality, recordings, spend

PAGES = (overview, calls, spend, recordings, quality, alerts, audit)
