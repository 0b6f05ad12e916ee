"""What lets an interrupted rebuild be continued: the fingerprint of its settings and tariffs."""

from __future__ import annotations

import pytest

from common.config import Settings
from streams.domain.rating import load_tariffs, parse_tariffs
from warehouse.replay_load import config_of, fingerprint

pytestmark = pytest.mark.unit


def test_the_same_settings_and_tariffs_read_again_give_the_same_fingerprint():
    settings = Settings.from_env({})
    # Two processes: two TariffTable objects of the same file.
    first = config_of(settings, load_tariffs(settings.tariffs_path))
    second = config_of(settings, load_tariffs(settings.tariffs_path))
    assert fingerprint(settings, first) == fingerprint(settings, second)


def test_another_tariff_row_or_setting_changes_the_fingerprint():
    settings = Settings.from_env({})
    text = settings.tariffs_path.read_text()
    base = fingerprint(settings, config_of(settings, parse_tariffs(text)))
    changed = text.replace("Russia mobile,2.20", "Russia mobile,2.21")
    assert fingerprint(settings, config_of(settings, parse_tariffs(changed))) != base
    later = settings.replace(incomplete_after=settings.incomplete_after + 1)
    assert fingerprint(later, config_of(later, parse_tariffs(text))) != base
    other = settings.replace(topic_events="other-events")
    assert fingerprint(other, config_of(other, parse_tariffs(text))) != base
