"""Properties of the CDR core over whole call scenarios (hypothesis).

The builders (``ev``, the strategies, the tariff tables) live in
``call_samples.py``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain import events as E
from streams.domain.cdr import build_cdr, cdr_from_state, state_of_events
from streams.domain.cdr_json import cdr_to_json
from streams.domain.state import fold, is_complete, state_from_bytes, state_to_bytes
from tests.unit.call_samples import TARIFFS, call_scenarios, deliveries

pytestmark = pytest.mark.unit



def _fold_all(events: list[E.Event], state=None):
    for event in events:
        state, _ = fold(state, event)
    return state


def _cdr_bytes(cdr) -> bytes:
    return cdr_to_json(cdr, 1)


# --- properties ---------------------------------------------------------------

@settings(deadline=None, max_examples=300)
@given(st.data())
def test_any_order_and_redelivery_folds_to_the_set_form(data: Any) -> None:
    events = data.draw(call_scenarios())
    delivered = data.draw(deliveries(events))
    state = _fold_all(delivered)
    incomplete = not is_complete(state)
    expected = build_cdr(events, TARIFFS, incomplete=incomplete)
    assert _cdr_bytes(cdr_from_state(state, TARIFFS, incomplete=incomplete)) == _cdr_bytes(expected)
    # The fold state itself is canonical: equal to the state computed over the set.
    assert state == state_of_events(events)


@settings(deadline=None, max_examples=200)
@given(st.data())
def test_complete_scenarios_need_no_incomplete_flag(data: Any) -> None:
    events = data.draw(call_scenarios(complete=True))
    state = _fold_all(data.draw(deliveries(events)))
    assert is_complete(state)
    assert _cdr_bytes(cdr_from_state(state, TARIFFS)) == _cdr_bytes(build_cdr(events, TARIFFS))


@settings(deadline=None, max_examples=200)
@given(st.data())
def test_serialised_state_folds_on_identically(data: Any) -> None:
    events = data.draw(call_scenarios())
    delivered = data.draw(deliveries(events))
    cut = data.draw(st.integers(1, len(delivered)))
    head = _fold_all(delivered[:cut])
    revived = state_from_bytes(state_to_bytes(head))
    assert revived == head
    direct, via_bytes = _fold_all(delivered[cut:], head), _fold_all(delivered[cut:], revived)
    assert via_bytes == direct
    assert state_to_bytes(via_bytes) == state_to_bytes(direct)


@settings(deadline=None, max_examples=200)
@given(st.data())
def test_changed_is_true_exactly_for_a_new_event_id(data: Any) -> None:
    events = data.draw(call_scenarios())
    state, seen = None, set()
    for event in data.draw(deliveries(events)):
        state, changed = fold(state, event)
        assert changed == (event.event_id not in seen)
        seen.add(event.event_id)
    assert state.event_ids == tuple(sorted(seen))
    assert build_cdr(events, TARIFFS, incomplete=True).events == len(seen)


@settings(deadline=None, max_examples=100)
@given(call_scenarios())
def test_ten_event_calls_serialise_small(events: list[E.Event]) -> None:
    # Short ids here; test_state.py checks the size with uuid-long ids.
    assert len(state_to_bytes(_fold_all(events))) < 1024


@settings(deadline=None, max_examples=200)
@given(st.data())
def test_any_valid_events_of_the_shared_strategy_fold_to_the_set_form(data: Any) -> None:
    # Extreme but valid values: years 0001-9999, 64-character ids, seconds up to 1.8e308.
    from tests.unit.strategies import valid_events

    drawn = data.draw(st.lists(valid_events(), min_size=1, max_size=12, unique_by=lambda e: e.event_id))
    events = [e._replace(call_id="call-x") for e in drawn]
    state = _fold_all(data.draw(deliveries(events)))
    incomplete = not is_complete(state)
    expected = cdr_to_json(build_cdr(events, TARIFFS, incomplete=incomplete), 1)
    assert cdr_to_json(cdr_from_state(state, TARIFFS, incomplete=incomplete), 1) == expected
    # Decimal, not double: a sum of valid recording seconds may exceed the largest double.
    assert json.loads(expected, parse_float=Decimal)["events"] == len(events)
    assert state_from_bytes(state_to_bytes(state)) == state
