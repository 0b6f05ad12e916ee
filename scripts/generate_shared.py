#!/usr/bin/env python3
"""Generate the two cores' copies of streams/domain/shared.toml.

    python scripts/generate_shared.py          # write streams/domain/shared.py, native/src/shared.rs
    python scripts/generate_shared.py --check  # exit 1 when either differs from the declaration

The generated files are committed (a fresh clone builds without running this);
tests/unit/test_shared_declaration.py runs the check.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DECLARATION = ROOT / "streams" / "domain" / "shared.toml"
PYTHON = ROOT / "streams" / "domain" / "shared.py"
RUST = ROOT / "native" / "src" / "shared.rs"
HEADER = "generated from streams/domain/shared.toml by scripts/generate_shared.py: do not edit"


def load(path: Path = DECLARATION) -> dict:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def python_source(shared: dict) -> str:
    lines = [f'"""What both cores share ({HEADER})."""', "",
             "from __future__ import annotations", "",
             f"STATE_FORMAT = {shared['state_format']}", ""]
    for name, value in shared["limits"].items():
        lines.append(f"{name.upper()} = {value:_}")
    lines += ["", "SOURCE_OF_TYPE: dict[str, str] = {"]
    lines += [f"    {kind!r}: {source!r}," for kind, source in shared["sources"].items()]
    lines += ["}", "", "DATA_FIELDS: dict[str, tuple[str, ...]] = {"]
    lines += [f"    {kind!r}: {tuple(fields)!r}," for kind, fields in shared["data_fields"].items()]
    lines += ["}", ""]
    for name, values in shared["enums"].items():
        lines.append(f"{name.upper()} = frozenset({tuple(values)!r})")
    lines += ["", "STATUS_BY_CAUSE: dict[str, str] = {"]
    lines += [f"    {cause!r}: {status!r}," for cause, status in shared["status_by_cause"].items()]
    lines += ["}", ""]
    for name, key in shared["bookkeeping"].items():
        lines.append(f"{name.upper()}_KEY = {key!r}")
    return "\n".join(lines) + "\n"


def _str_list(values: list[str]) -> str:
    return "&[" + ", ".join(f'"{v}"' for v in values) + "]"


def rust_source(shared: dict) -> str:
    lines = [f"//! What both cores share ({HEADER}).", "",
             f"pub const STATE_FORMAT: i64 = {shared['state_format']};", ""]
    for name, value in shared["limits"].items():
        kind = "i64" if name.endswith("_us") else "usize"
        lines.append(f"pub const {name.upper()}: {kind} = {value:_};")
    lines += ["", "/// The contract's `source` of an event type.",
              "pub fn source_of(kind: &str) -> Option<&'static str> {",
              "    SOURCES_TABLE.iter().find(|(k, _)| *k == kind).map(|(_, s)| *s)", "}", "",
              "/// An event type's data fields in the contract's order (the canonical `data`).",
              "pub fn data_fields_of(kind: &str) -> Option<&'static [&'static str]> {",
              "    DATA_FIELDS_TABLE.iter().find(|(k, _)| *k == kind).map(|(_, f)| *f)", "}", ""]
    for name, values in shared["enums"].items():
        lines.append(f"pub const {name.upper()}: &[&str] = {_str_list(values)};")
    lines += ["", "/// A CDR's status when nobody answered, by call.ended's cause.",
              "pub fn status_of_cause(cause: &str) -> Option<&'static str> {",
              "    STATUS_TABLE.iter().find(|(c, _)| *c == cause).map(|(_, s)| *s)", "}", ""]
    for name, key in shared["bookkeeping"].items():
        lines.append(f'pub const {name.upper()}_KEY: &str = "{key}";')
    # The same tables by name, for the module to show what it was compiled from.
    lines += ["", "pub const LIMITS_TABLE: &[(&str, i64)] = &["]
    lines += [f'    ("{name}", {name.upper()}),' if name.endswith("_us") else f'    ("{name}", {name.upper()} as i64),'
              for name in shared["limits"]]
    lines += ["];", "pub const SOURCES_TABLE: &[(&str, &str)] = &["]
    lines += [f'    ("{kind}", "{source}"),' for kind, source in shared["sources"].items()]
    lines += ["];", "pub const DATA_FIELDS_TABLE: &[(&str, &[&str])] = &["]
    lines += [f'    ("{kind}", {_str_list(fields)}),' for kind, fields in shared["data_fields"].items()]
    lines += ["];", "pub const ENUMS_TABLE: &[(&str, &[&str])] = &["]
    lines += [f'    ("{name}", {name.upper()}),' for name in shared["enums"]]
    lines += ["];", "pub const STATUS_TABLE: &[(&str, &str)] = &["]
    lines += [f'    ("{cause}", "{status}"),' for cause, status in shared["status_by_cause"].items()]
    lines += ["];", "pub const BOOKKEEPING_TABLE: &[(&str, &str)] = &["]
    lines += [f'    ("{name}", {name.upper()}_KEY),' for name in shared["bookkeeping"]]
    lines += ["];"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    shared = load()
    outputs = {PYTHON: python_source(shared), RUST: rust_source(shared)}
    stale = [path for path, text in outputs.items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is not what {DECLARATION.relative_to(ROOT)} gives; "
                  "run python scripts/generate_shared.py", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(outputs[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
