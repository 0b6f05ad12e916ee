"""The message catalogue: every message of the code has a Russian translation, the shipped .mo
is the compiled .po, and the locale is chosen from the cookie, the account, Accept-Language."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo

from dashboards import formatting as fmt
from dashboards.alert_names import NAMES, alert_name
from dashboards.i18n import _, choose, negotiate, speaking
from dashboards.locale.build import catalog

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2] / "dashboards"


def test_every_message_in_the_code_has_a_russian_translation():
    found = set()
    for _file, _line, message, *_rest in extract_from_dir(str(ROOT), keywords={"_": None, "N_": None,
                                                                               "ngettext": (1, 2)}):
        first = message if isinstance(message, str) else message[0]
        if isinstance(first, str):
            found.add(first)
    cat = catalog()
    missing = sorted(m for m in found if m and not (cat.get(m) and cat.get(m).string))
    assert not missing, missing


def test_the_shipped_mo_is_the_compiled_catalogue():
    shipped = read_mo(open(ROOT / "locale" / "ru" / "LC_MESSAGES" / "callstream.mo", "rb"))
    fresh = io.BytesIO()
    write_mo(fresh, catalog())
    fresh.seek(0)
    def table(cat):
        return {str(m.id): str(m.string) for m in cat if m.id}

    assert table(shipped) == table(read_mo(fresh))


def test_texts_numbers_and_alert_names_follow_the_locale():
    with speaking("ru"):
        assert _("Spend today") == "Расходы сегодня"
        assert fmt.money(Decimal("1432183.325"), "RUB") == "1 432 183,33 RUB"
        assert fmt.percent(0.7017) == "70,2 %" and fmt.seconds(725) == "12 мин 5 с"
        assert alert_name("recording_missing") == "Нет записи разговора"
    with speaking("en"):
        assert fmt.money(Decimal("1432183.325"), "RUB") == "1 432 183.33 RUB"
    assert {"recording_missing", "controller_outage", "spend_spike", "low_asr", "recording_storage_100"} <= set(NAMES)


def test_locale_choice():
    assert negotiate("ru-RU,ru;q=0.9,en;q=0.5") == "ru" and negotiate("de-DE,en;q=0.3") == "en"
    assert negotiate("de", "ru") == "ru" and negotiate(None) == "en"
    assert choose("en", "ru", "ru", "en") == "en" and choose(None, "ru", "en", "en") == "ru"
    assert choose("xx", None, "ru", "en") == "ru" and choose(None, None, None, "ru") == "ru"
