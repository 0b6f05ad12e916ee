"""Requests the dashboard refuses before any code of its own runs: 400/413 with a reason, never 500.

- a query string longer than ``MAX_QUERY_BYTES`` (no page or link needs one);
- a body longer than ``MAX_BODY_BYTES`` (413, from Flask's ``MAX_CONTENT_LENGTH``);
- a Dash callback request (``/_dash-update-component``) that is not what the
  page's own renderer sends: not a JSON object, an output no callback has,
  inputs/state/outputs that do not match the callback's declaration in count
  and shape. Dash would otherwise fail on them with a KeyError (HTTP 500).

The values inside a well-formed request are the callbacks' business: each
treats a forged value as a bad filter, or falls back to a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_QUERY_BYTES = 16 * 1024
MAX_BODY_BYTES = 2 * 1024 * 1024
CALLBACK_PATH = "/_dash-update-component"


def _item_problem(item: Any, name: str) -> str | None:
    """Why one input/state/output entry is malformed (a list: a pattern-matching group), or None."""
    entries = item if isinstance(item, list) else [item]
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("property"), str):
            return f"{name}: each entry needs an id and a property"
        if not isinstance(entry.get("id"), (str, dict)):
            return f"{name}: an id must be a string or an object"
    return None


def callback_problem(body: Any, callback_map: Mapping[str, Any]) -> str | None:
    """Why ``body`` is not a callback request of this app, or None when it is well formed."""
    if not isinstance(body, dict):
        return "expected a JSON object"
    output = body.get("output")
    if not isinstance(output, str) or "callback" not in callback_map.get(output, {}):
        return "no callback has this output"  # a clientside callback's has no server function either
    spec = callback_map[output]
    for key in ("inputs", "state"):
        items, expected = body.get(key, []), spec.get(key, [])
        if not isinstance(items, list) or len(items) != len(expected):
            return f"{key}: expected a list of {len(expected)}"
        for item in items:
            problem = _item_problem(item, key)
            if problem:
                return problem
    outputs = body.get("outputs")
    declared = output.strip(".").split("...") if output.startswith("..") else [output]
    listed = outputs if isinstance(outputs, list) and output.startswith("..") else [outputs]
    if len(listed) != len(declared) or any(_item_problem(o, "outputs") for o in listed):
        return f"outputs: expected {len(declared)} entries with an id and a property"
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        return "changedPropIds: expected a list of strings"
    return None


def install(server: Any, callback_map: Mapping[str, Any]) -> None:
    """Add the checks to the Flask ``server`` (after auth: strangers get a 401 first)."""
    from flask import Response, request

    server.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    def refuse(reason: str) -> Response:
        return Response(f"bad request: {reason}\n", status=400, mimetype="text/plain")

    @server.before_request
    def _guard() -> Any:
        if len(request.query_string) > MAX_QUERY_BYTES:
            return refuse(f"the query string is longer than {MAX_QUERY_BYTES} bytes")
        if request.path == CALLBACK_PATH and request.method == "POST":
            body = request.get_json(silent=True)  # a body over MAX_CONTENT_LENGTH: 413 here
            problem = callback_problem(body, callback_map)
            if problem:
                return refuse(f"not a callback request of this dashboard: {problem}")
        return None
