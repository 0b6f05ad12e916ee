"""Python's cycle collector, set for a long-running service (worker, notify).

Such a process keeps a large, long-lived heap (call states, digest windows,
Faust's and Apprise's modules) and allocates short-lived objects by the
million. With CPython's thresholds (700, 10, 10) the collector walked the
long-lived heap so often that it took a third of the worker's CPU and a
quarter of notify's catch-up. ``quiet`` moves what start-up left alive out
of its sight (``gc.freeze``) and makes the generations run less often; cycles
are still collected. Each service chooses its thresholds, with its reasons,
where it calls this.
"""

from __future__ import annotations

import gc


def quiet(young: int, middle: int, full: int) -> None:
    """Collect once, freeze the survivors, then collect generations at these thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(young, middle, full)
