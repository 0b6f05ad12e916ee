"""The domain core stays pure: no Kafka, Faust or DuckDB, and no import cycles.

``streams/domain`` is plain functions over plain data (style.md: "framework
types leaking into the domain core" is what we avoid); the compiled core
ports it, the worker and the rebuild wrap it. Both properties are checked on
the code itself, not on a promise in a docstring.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "streams" / "domain"
FORBIDDEN = ("faust", "mode", "aiokafka", "kafka", "duckdb", "pyarrow", "pandas", "dash", "plotly",
             "rocksdict", "callstream_native", "callstream", "warehouse", "dashboards")


def _imports(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (at any depth of its code)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_domain_imports_nothing_but_itself_and_the_standard_library_and_orjson() -> None:
    offenders = {}
    for path in sorted(DOMAIN.glob("*.py")):
        bad = {name for name in _imports(path)
               if name.split(".")[0] in FORBIDDEN or (name.startswith("streams.") and
                                                      not name.startswith("streams.domain"))}
        if bad:
            offenders[path.name] = sorted(bad)
    assert offenders == {}


def test_importing_the_whole_domain_loads_no_framework() -> None:
    # In a fresh interpreter: what the domain pulls in, transitively, at import time.
    modules = ", ".join(f"streams.domain.{p.stem}" for p in sorted(DOMAIN.glob("*.py")) if p.stem != "__init__")
    code = (f"import sys, importlib\nfor m in '{modules}'.split(', '): importlib.import_module(m)\n"
            f"print(' '.join(sorted({{n.split('.')[0] for n in sys.modules}})))")
    loaded = set(subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True,
                                text=True).stdout.split())
    assert loaded & set(FORBIDDEN) == set()


def test_the_domain_modules_import_each_other_without_cycles() -> None:
    graph = {p.stem: {name.rsplit(".", 1)[1] for name in _imports(p) if name.startswith("streams.domain.")}
             for p in DOMAIN.glob("*.py")}
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"import cycle: {' -> '.join(path + (node,))}"
        if node in done:
            return
        for child in graph.get(node, ()):
            visit(child, path + (node,))
        done.add(node)

    for module in graph:
        visit(module, ())


def test_no_domain_function_imports_at_call_time_to_dodge_a_cycle() -> None:
    late = []
    for path in DOMAIN.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, (ast.Import, ast.ImportFrom)):
                        late.append(f"{path.name}:{inner.lineno}")
    assert late == []
