"""Write ``ru/LC_MESSAGES/callstream.po`` from ru_messages.py and compile every ``.mo``.

    python -m dashboards.locale.build      (make messages)
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import write_po

from dashboards.locale.ru_messages import PLURALS, RU

HERE = Path(__file__).resolve().parent


def catalog() -> Catalog:
    """The Russian catalogue of the dashboard."""
    cat = Catalog(locale="ru", domain="callstream", project="callstream", charset="utf-8")
    for msgid, text in RU.items():
        cat.add(msgid, text)
    for msgid, forms in PLURALS.items():
        plural = msgid.replace(" file ", " files ")
        cat.add((msgid, plural), forms)
    return cat


def main() -> None:
    """Write the .po and the .mo next to it."""
    target = HERE / "ru" / "LC_MESSAGES"
    target.mkdir(parents=True, exist_ok=True)
    cat = catalog()
    with open(target / "callstream.po", "wb") as po:
        write_po(po, cat, omit_header=False, sort_output=True)
    with open(target / "callstream.mo", "wb") as mo:
        write_mo(mo, cat)


if __name__ == "__main__":
    main()
