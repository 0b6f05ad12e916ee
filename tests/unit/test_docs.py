"""The docs hold together: a README read in five minutes, every link valid, every page reachable.

Links are checked the way a reader follows them on a code host: relative to the
file that holds them, to a file of this repository (never outside it: a user of
the package has no ``../shared``), and to a heading of that file when they name
one (GitHub's anchor rule: lower case, punctuation dropped, spaces to hyphens).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
README_LIMIT = 16 * 1024

# [text](target) outside code spans and fences; images too.
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_CODE = re.compile(r"`[^`\n]*`")
_HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.M)


def links(path: Path) -> list[str]:
    """The link targets of one Markdown file, code spans and fences left out."""
    text = _CODE.sub("", _FENCE.sub("", path.read_text(encoding="utf-8")))
    return _LINK.findall(text)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a link to ``path`` may name."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    return {anchor(h) for h in _HEADING.findall(text)}


def broken(path: Path) -> list[str]:
    """The links of ``path`` that lead nowhere in this repository."""
    bad = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if ROOT not in dest.parents and dest != ROOT:
            bad.append(f"{target} (outside the repository)")
        elif not dest.exists():
            bad.append(f"{target} (no such file)")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            bad.append(f"{target} (no such heading)")
    return bad


def test_the_readme_is_read_in_five_minutes() -> None:
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes; move detail into docs/ (limit {README_LIMIT})"


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_leads_somewhere(path: Path) -> None:
    assert broken(path) == []


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(README)}
    assert [p.name for p in DOCS if p.resolve() not in linked] == []


def test_the_link_checker_sees_a_broken_link(tmp_path: Path) -> None:
    """The checker itself: a missing file, a missing heading and a path outside the repository."""
    page = ROOT / "docs" / "contract.md"
    assert anchor("Contract v1.1 in code, and where the contract is silent") == \
        "contract-v11-in-code-and-where-the-contract-is-silent"
    probe = tmp_path / "probe.md"
    probe.write_text(f"[a]({page}#no-such-heading) [b](nothing.md) [c](../../x.md) `[d](gone.md)`",
                     encoding="utf-8")
    assert len(links(probe)) == 3
    assert len(broken(probe)) == 3
