"""One declaration for both cores: ``streams/domain/shared.toml``.

The Python core reads ``streams/domain/shared.py`` and the compiled core
``native/src/shared.rs``, both generated from the declaration; these tests
fail when either generated file is stale, when the installed compiled core
was built from another declaration, and when a core keeps a copy of a shared
table of its own.
"""

from __future__ import annotations

import re
from pathlib import Path

import callstream_native
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scripts import generate_shared
from streams.domain import shared
from streams.domain.validation import validate
from streams.domain.wire import event_to_dict
from tests.unit.strategies import valid_wire

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_the_generated_files_are_what_the_declaration_gives() -> None:
    declaration = generate_shared.load()
    assert (ROOT / "streams/domain/shared.py").read_text() == generate_shared.python_source(declaration)
    assert (ROOT / "native/src/shared.rs").read_text() == generate_shared.rust_source(declaration)
    assert generate_shared.main(["--check"]) == 0


def test_the_installed_compiled_core_was_built_from_this_declaration() -> None:
    declaration = generate_shared.load()
    built = callstream_native.SHARED
    assert built["state_format"] == declaration["state_format"]
    assert built["limits"] == declaration["limits"]
    assert built["sources"] == declaration["sources"]  # as the compiled event kinds map them
    assert built["enums"] == declaration["enums"]
    assert built["status_by_cause"] == declaration["status_by_cause"]
    assert built["bookkeeping"] == declaration["bookkeeping"]
    assert built["data_fields"] == declaration["data_fields"]


def test_the_python_core_reads_the_declaration() -> None:
    from streams.domain import cdr, events, state

    declaration = generate_shared.load()
    assert events.SOURCE_OF_TYPE == declaration["sources"]
    assert events.DIRECTIONS == frozenset(declaration["enums"]["directions"])
    assert cdr.STATUS_BY_CAUSE is shared.STATUS_BY_CAUSE
    assert state.STATE_FORMAT == declaration["state_format"]
    assert shared.DATA_FIELDS == {kind: tuple(fields) for kind, fields in declaration["data_fields"].items()}


@settings(max_examples=300, deadline=None)
@given(st.lists(valid_wire(), min_size=1, max_size=5))
def test_the_python_core_writes_data_in_the_declared_order(drawn) -> None:
    """wire.py's writers (the sink's events.data) give each type's fields in the order the
    compiled core writes the rebuild's events.data in (native/src/validate.rs)."""
    for _, wire in drawn:
        event = validate(orjson.dumps(wire))
        assert tuple(event_to_dict(event)["data"]) == shared.DATA_FIELDS[event.type]


def test_every_type_has_its_data_fields_declared() -> None:
    assert set(shared.DATA_FIELDS) == set(shared.SOURCE_OF_TYPE)


@pytest.mark.parametrize("values", [
    ["inbound", "outbound", "internal"], ["rented", "operator", "sip", "internal"],
    ["ok", "license_error", "config_not_found"], ["normal", "busy", "no_answer", "rejected"],
])
def test_no_core_keeps_its_own_copy_of_a_declared_table(values: list[str]) -> None:
    # A list of the declared values written out anywhere but the declaration and its
    # generated files is a copy that could drift.
    pattern = re.compile(r"[\"']" + r"[\"'],\s*[\"']".join(map(re.escape, values)) + r"[\"']")
    sources = list((ROOT / "streams" / "domain").glob("*.py")) + list((ROOT / "native" / "src").glob("*.rs"))
    copies = [p.relative_to(ROOT) for p in sources
              if p.name not in ("shared.py", "shared.rs") and pattern.search(p.read_text())]
    assert copies == []
