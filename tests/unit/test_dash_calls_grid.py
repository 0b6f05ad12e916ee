"""The Call detail table as one DataTable: its rows, the header click and the row click."""

from __future__ import annotations

import pytest

from dashboards import calls_grid
from dashboards.pages import calls
from warehouse.filters import SORT_COLUMNS

pytestmark = pytest.mark.unit

HOSTILE = '<img src=x onerror="document.title=1"><script>window.pwned=1</script>'


def test_rows_are_plain_text_keyed_by_call_id() -> None:
    records = [{"call_id": "c-1", "from": HOSTILE, "talk_s": 1.5}, {"call_id": "c-2", "from": None, "talk_s": 0}]
    columns = [("from", "From", lambda r: r["from"] or "—"), ("talk_s", "Talk", lambda r: f"{r['talk_s']} s")]
    table = calls_grid.grid(records, columns, {"column": "talk_s", "descending": False})
    assert table.data == [{"id": "c-1", "from": HOSTILE, "talk_s": "1.5 s"},
                          {"id": "c-2", "from": "—", "talk_s": "0 s"}]
    # Text columns, never markdown (which would parse links and, with html allowed, markup).
    assert [c["type"] for c in table.columns] == ["text", "text"]
    assert all("presentation" not in c for c in table.columns)
    assert table.sort_action == "custom" and table.page_action == "none" and table.editable is False
    assert table.sort_by == [{"column_id": "talk_s", "direction": "asc"}]


def test_a_header_click_names_its_column() -> None:
    # Another column: the table proposes it ascending; the page sorts by it descending.
    column = calls_grid.clicked_column([{"column_id": "cost", "direction": "asc"}], "started_at", SORT_COLUMNS)
    assert column == "cost" and calls.next_sort(column, {"column": "started_at", "descending": True}) == \
        {"column": "cost", "descending": True}
    # The sorted column, descending: the table proposes no sort at all; the page flips it.
    column = calls_grid.clicked_column([], "cost", SORT_COLUMNS)
    assert calls.next_sort(column, {"column": "cost", "descending": True}) == {"column": "cost", "descending": False}
    # The sorted column, ascending: the table proposes descending; the page flips it.
    column = calls_grid.clicked_column([{"column_id": "cost", "direction": "desc"}], "cost", SORT_COLUMNS)
    assert calls.next_sort(column, {"column": "cost", "descending": False}) == {"column": "cost", "descending": True}


@pytest.mark.parametrize("forged", [None, "cost", [{"column_id": "1; DROP TABLE cdrs"}], [{"column_id": 5}],
                                    [{"column_id": "cost"}, {"column_id": "talk_s"}], ["cost"], {"column_id": "cost"}])
def test_a_forged_header_click_names_no_column(forged) -> None:
    assert calls_grid.clicked_column(forged, "started_at", SORT_COLUMNS) is None


def test_a_cell_click_names_its_call() -> None:
    assert calls_grid.call_of("c-1") == "c-1"
    for forged in (None, "", "x" * 257, ["c-1"], 5, {"row_id": "c-1"}):
        assert calls_grid.call_of(forged) is None
