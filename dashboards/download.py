"""``/download/calls.csv``: the call table's current filter as a billing CSV (contract v1)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from dashboards import controls
from dashboards.data import Context
from dashboards.pages.calls import DOWNLOAD_PATH
from warehouse import dashboard_queries as dq


def filter_of_query(text: str | None, ctx: Context) -> Any:
    """The CallFilter carried by the link's ``q`` parameter (JSON of the control values)."""
    try:
        values = json.loads(text or "{}")
    except ValueError:
        raise controls.FilterError("q: not JSON") from None
    if not isinstance(values, dict):
        raise controls.FilterError("q: expected an object of filter values")
    return controls.call_filter(values, ctx.now().date())


def file_name(flt: Any) -> str:
    """``calls-2026-11-01--2026-11-30.csv`` (the last day included, as the picker shows it)."""
    from datetime import timedelta

    return f"calls-{flt.start.isoformat()}--{(flt.end - timedelta(days=1)).isoformat()}.csv"


def install(server: Any, ctx: Context) -> None:
    """Add the download route to the Flask ``server`` (behind the same auth as the pages)."""
    from flask import Response, request, send_file

    @server.route(DOWNLOAD_PATH)
    def _download() -> Any:
        try:
            flt = filter_of_query(request.args.get("q"), ctx)
        except controls.FilterError as exc:
            return Response(f"bad filter: {exc}\n", status=400, mimetype="text/plain")
        handle, name = tempfile.mkstemp(prefix="callstream-download-", suffix=".csv")
        os.close(handle)
        path = Path(name)
        try:
            dq.write_billing_csv(ctx.data.reader, flt, path)
            response = send_file(path, mimetype="text/csv", as_attachment=True, download_name=file_name(flt),
                                 max_age=0)
        except Exception:
            path.unlink(missing_ok=True)
            raise
        response.headers["Cache-Control"] = "no-store"
        # The open file keeps its data readable after the name is gone; nothing is left behind.
        path.unlink(missing_ok=True)
        return response
