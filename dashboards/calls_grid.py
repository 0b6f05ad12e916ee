"""The Call detail table as ONE Dash component (a ``dash_table.DataTable``), not ~700.

Dash's renderer re-checks every component of the page at each step of a callback's life
cycle; a table of 50 rows built as ``html.Tr``/``html.Td`` is ~700 components and cost ~1 s
of the browser's CPU per sort or page (docs/performance.md). Here the rows are plain data.

Every cell is plain text, formatted on the server (the reader's locale and zone), and the
DataTable prints it as text: no markdown, no HTML. Sorting and paging stay on the server:
``sort_action="custom"`` only reports the header click (``sort_by``), which
:func:`clicked_column` turns into the column for the page's own rule (the same column flips,
another one sorts descending); the page's own buttons page. A click on a cell sets
``active_cell``, whose ``row_id`` (the row's ``id``: its call id) opens the call (through a
store, see ``OPEN_JS``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from dash import dash_table

GRID_ID = "calls-grid"
MAX_CALL_ID = 256  # longer ids are not calls of the contract: nothing to open

# The look of the former html table (assets/style.css has the hover, the focus and the
# header-wide sort click); widths follow the text.
FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'  # the page's (the table's own is monospace)
STYLE_CELL = {"fontFamily": FONT, "fontSize": "13px", "padding": "5px 8px", "textAlign": "left",
              "whiteSpace": "nowrap", "maxWidth": "420px", "overflow": "hidden", "textOverflow": "ellipsis",
              "border": "none", "borderBottom": "1px solid #e5e7eb", "color": "#111827"}
STYLE_HEADER = {"backgroundColor": "#f9fafb", "fontWeight": 600}


def grid(records: Iterable[Mapping[str, Any]], columns: Sequence[tuple[str, str, Callable[[Any], str]]],
         sort: Mapping[str, Any]) -> dash_table.DataTable:
    """The table of ``records``: one column per (id, header already translated, text of a row), rows
    keyed by call id, the header of ``sort``'s column showing its order."""
    data = [{"id": r["call_id"], **{c: text(r) for c, _t, text in columns}} for r in records]
    return dash_table.DataTable(
        id=GRID_ID, data=data, columns=[{"id": c, "name": title, "type": "text"} for c, title, _f in columns],
        sort_action="custom", sort_mode="single", page_action="none", editable=False, cell_selectable=True,
        sort_by=[{"column_id": sort["column"], "direction": "desc" if sort["descending"] else "asc"}],
        style_as_list_view=True, style_cell=STYLE_CELL, style_header=STYLE_HEADER, style_table={"overflowX": "auto"})


def clicked_column(sort_by: Any, current: str, sortable: Iterable[str]) -> str | None:
    """The column whose header was clicked, from the ``sort_by`` the table reports, or None for a
    forged one.

    The DataTable proposes none → ascending → descending → none per column; the page keeps its
    own rule (``calls.next_sort``) and only takes the column from it: the sorted column comes
    back with the other direction, or as no sort at all (the ``current`` column); another column
    comes back alone.
    """
    if not isinstance(sort_by, list) or len(sort_by) > 1:
        return None
    if not sort_by:
        return current
    column = sort_by[0].get("column_id") if isinstance(sort_by[0], dict) else None
    return column if isinstance(column, str) and column in set(sortable) else None


# A cell click, in the browser: the row's call id into the page's store (``OPEN_STORE``), which
# the server's callback reads. The table clears its selection whenever its data change (each
# sort or page); done in the browser, that clearing costs no request.
OPEN_STORE = "calls-open"
OPEN_JS = """function (cell) {
    var id = cell && cell.row_id;
    return typeof id === "string" ? id : window.dash_clientside.no_update;
}"""


def call_of(value: Any) -> str | None:
    """The call id the browser says was clicked, or None for a forged one."""
    return value if isinstance(value, str) and 0 < len(value) <= MAX_CALL_ID else None
