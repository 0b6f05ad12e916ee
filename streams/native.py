"""The worker's compiled fast path: ``native/``, the ``callstream_native`` module.

``streams/domain`` stays the reference core; ``native/`` ports its hot path
(validation of a valid event, the fold, CDR and alert JSON, the state bytes)
to Rust, because the pure Python core alone took most of the worker's CPU
(``bench/worker_core.py`` measures it). The compiled core declines what it is not sure of (every
rejected or unusual message, numbers beyond its 128-bit arithmetic, state
bytes of a shape it does not expect): those go through the Python core, so
DLQ reasons and every edge stay the reference's. The two read and write the
same state bytes, so a call can move between them from one batch to the next.
``tests/unit/test_native_*.py`` hold the compiled core to the Python one.

``CALLSTREAM_NATIVE``: ``auto`` (use it when installed), ``on`` (refuse to
start without it), ``off`` (Python only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from common.config import Settings
from common.errors import CliError
from streams.call_store import Summary, summary_of_bytes
from streams.domain.alerts import AlertRules
from streams.domain.rating import TariffTable

log = logging.getLogger("callstream.worker")


def native_core(settings: Settings, tariffs: TariffTable, rules: AlertRules) -> Any | None:
    """The compiled core for these tariffs and rules, or None for the Python core."""
    if settings.native == "off":
        return None
    try:
        import callstream_native
    except ImportError:
        if settings.native == "on":
            raise CliError("CALLSTREAM_NATIVE=on, but the compiled core is not installed "
                           "(make setup builds it from native/ with Rust's cargo)", exit_code=2) from None
        log.warning("compiled core not installed: the worker runs the Python core only "
                    "(make setup builds it from native/ with Rust's cargo)")
        return None
    rows = [(row.line, row.direction, row.prefix, row.region, format(row.rate_per_min, "f"),
             format(row.connect_fee, "f"), row.increment_s, row.min_s, row.currency,
             row.valid_from_us) for row in tariffs.rows]
    return callstream_native.Core(rows, rules.stale_key_after_us, settings.max_call_events)


def native_validate() -> Any:
    """``callstream_native.validate`` (value, key, timestamp_ms) -> a NativeEvent or None."""
    import callstream_native

    return callstream_native.validate


class Guard:
    """Calls into the compiled core; a panic there gives None: the Python core takes the input.

    A panic would be a bug of the port. PyO3 raises it as ``PanicException``, a
    ``BaseException``: the agent's ``except Exception`` would not see it, and the
    task would die with its batch. Here it is logged and the reference core
    does the step instead, so nothing is lost.
    """

    def __init__(self) -> None:
        import callstream_native

        self.panic = callstream_native.PanicException
        self.panics = 0

    def __call__(self, function: Callable[..., Any], *args: Any) -> Any:
        try:
            return function(*args)
        except self.panic:
            self.panics += 1
            log.error("the compiled core panicked in %s; the Python core takes this input",
                      getattr(function, "__name__", function), exc_info=True)
            return None


def native_summarize(core: Any | None) -> Callable[[bytes], Summary] | None:
    """The compiled core's reading of state bytes for the schedule (None: the Python core's)."""
    if core is None:
        return None
    import callstream_native

    fast = callstream_native.state_summary
    guard = Guard()

    def summarize(blob: bytes) -> Summary:
        fields = guard(fast, blob)
        return summary_of_bytes(blob) if fields is None else Summary._make(fields)

    return summarize
