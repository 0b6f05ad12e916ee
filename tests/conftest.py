"""What holds for every test: it is marked unit or integration, so that either half runs alone.

The fixtures live with the tests that use them: ``tests/unit/conftest.py``
(pure tests: no network) and ``tests/integration/conftest.py`` (the real
broker, topics of each test's own).
"""

from __future__ import annotations

import pytest

KINDS = ("unit", "integration")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a test that is neither, or both: `pytest -m unit` and `-m integration` must split the suite."""
    wrong = [item.nodeid for item in items
             if sum(item.get_closest_marker(kind) is not None for kind in KINDS) != 1]
    if wrong:
        raise pytest.UsageError("tests must be marked unit or integration (exactly one): " + ", ".join(wrong[:10]))
