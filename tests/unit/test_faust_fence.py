"""The Faust fence: every private name of Faust, mode or aiokafka that callstream relies on
is declared in ``streams.faust_fence.PRIVATE``, exists in the installed libraries, and is used
nowhere outside ``streams/faust_fence``. A library upgrade that renames or drops one fails
here, naming it (what it is for: docs/faust.md)."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
from pathlib import Path

import pytest

from streams.faust_fence import OWN, PRIVATE, STDLIB

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
FENCE = ROOT / "streams" / "faust_fence"
_ACCESS = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\.(_[A-Za-z][A-Za-z0-9_]*)\b")


def _owner(spec: str):
    module, _, name = spec.partition(":")
    return importlib.import_module(module), getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("private", PRIVATE, ids=lambda p: f"{p.owner.split(':')[1]}.{p.name}")
def test_each_private_name_exists_in_the_installed_libraries(private) -> None:
    module, owner = _owner(private.owner)
    if private.kind == "method":
        assert callable(getattr(owner, private.name, None)), f"{private.owner} has no method {private.name}"
    else:
        source = inspect.getsource(module)
        assert re.search(rf"self\.{private.name}\s*[:=]", source), \
            f"{private.owner}'s module no longer assigns self.{private.name}"


def test_the_fence_uses_no_undeclared_private_name() -> None:
    declared = {p.name for p in PRIVATE} | OWN | STDLIB | {"__init__", "__code__"}
    used = {name for path in FENCE.glob("*.py") for name in _ACCESS.findall(path.read_text())}
    assert used - declared == set()


def test_no_module_outside_the_fence_touches_a_library_private_name() -> None:
    names = {p.name for p in PRIVATE}
    offenders = []
    for top in ("streams", "warehouse", "callstream", "dashboards", "bench"):
        for path in (ROOT / top).rglob("*.py"):
            if FENCE in path.parents:
                continue
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                # self._x outside the fence is that class's own attribute, not a library's.
                accessed = {m.group(1) for m in _ACCESS.finditer(line) if not m.group(0).startswith("self.")}
                if accessed & names:
                    offenders.append(f"{path.relative_to(ROOT)}:{lineno}")
    assert offenders == []


def test_the_versions_the_fence_was_checked_against() -> None:
    # The fence was written and measured against these; docs/faust.md says what to re-check
    # on an upgrade (the tests above, the transport's unit tests, the kill tests).
    assert importlib.metadata.version("faust-streaming") == "0.15.3"
    assert importlib.metadata.version("aiokafka") == "0.14.0"
