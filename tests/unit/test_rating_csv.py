"""The tariff CSV loader refuses a bad file with its name, the line and the problem."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from streams.domain.rating import HEADER, TariffError, load_tariffs, parse_tariffs
from streams.domain.timefmt import parse_ts_us

pytestmark = pytest.mark.unit

HEAD = ",".join(HEADER)
GOOD = "operator,outbound,7,Russia,1.50,0.30,60,0,RUB,2026-01-01T00:00:00Z"


def write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "tariffs.csv"
    path.write_bytes(text.encode(encoding))
    return path


def refused(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(TariffError) as info:
        load_tariffs(path)
    message = str(info.value)
    assert message.startswith(str(path) + ":")
    return message


def test_a_good_file_loads_with_exact_decimals(tmp_path: Path) -> None:
    text = (f"\ufeff{HEAD}\r\n{GOOD}\r\n"
            'sip,inbound,,"SIP, own carrier",0,0,1,0,RUB,2026-01-01T00:00:00.5+00:00\r\n\r\n')
    table = load_tariffs(write(tmp_path, text))
    first, second = table.rows
    assert (first.rate_per_min, first.connect_fee, first.increment_s, first.min_s) == \
        (Decimal("1.50"), Decimal("0.30"), 60, 0)
    assert str(first.rate_per_min) == "1.50"
    assert (second.prefix, second.region, second.valid_from_us) == (
        "", "SIP, own carrier", parse_ts_us("2026-01-01T00:00:00.500Z"))


@pytest.mark.parametrize(("row", "problem"), [
    ("operator,outbound,7,Russia,1,5,0.30,60,0,RUB,2026-01-01T00:00:00Z", "11 columns, expected 10"),
    ("operator,outbound,7,Russia,1.50,0.30,60,0,RUB", "9 columns, expected 10"),
    ("operator,outbound,7,Russia,1;50,0.30,60,0,RUB,2026-01-01T00:00:00Z", "bad decimal in rate_per_min"),
    ("operator,outbound,7,Russia,1e3,0.30,60,0,RUB,2026-01-01T00:00:00Z", "bad decimal in rate_per_min"),
    ("operator,outbound,7,Russia,NaN,0.30,60,0,RUB,2026-01-01T00:00:00Z", "bad decimal in rate_per_min"),
    ("operator,outbound,7,Russia,,0.30,60,0,RUB,2026-01-01T00:00:00Z", "bad decimal in rate_per_min"),
    ("operator,outbound,7,Russia,1.50,.30,60,0,RUB,2026-01-01T00:00:00Z", "bad decimal in connect_fee"),
    ("operator,outbound,7,Russia,-1.50,0.30,60,0,RUB,2026-01-01T00:00:00Z", "negative money in rate_per_min"),
    ("operator,outbound,7,Russia,1.50,-0.01,60,0,RUB,2026-01-01T00:00:00Z", "negative money in connect_fee"),
    ("operator,outbound,7,Russia,1.50,0.30,0,0,RUB,2026-01-01T00:00:00Z", "increment_s must be >= 1"),
    ("operator,outbound,7,Russia,1.50,0.30,1.5,0,RUB,2026-01-01T00:00:00Z", "bad integer in increment_s"),
    ("operator,outbound,7,Russia,1.50,0.30,60,-1,RUB,2026-01-01T00:00:00Z", "min_s must be >= 0"),
    ("landline,outbound,7,Russia,1.50,0.30,60,0,RUB,2026-01-01T00:00:00Z", "bad line 'landline'"),
    ("operator,out,7,Russia,1.50,0.30,60,0,RUB,2026-01-01T00:00:00Z", "bad direction 'out'"),
    ("operator,outbound,+7,Russia,1.50,0.30,60,0,RUB,2026-01-01T00:00:00Z", "prefix '+7' must be digits"),
    ("operator,outbound,7 495,Russia,1.50,0.30,60,0,RUB,2026-01-01T00:00:00Z", "prefix '7 495' must be digits"),
    ("operator,outbound,7,Russia,1.50,0.30,60,0,RUB,2026-01-01", "bad timestamp in valid_from"),
    ("operator,outbound,7,Russia,1.50,0.30,60,0,RUB,2026-02-30T00:00:00Z", "bad timestamp in valid_from"),
    ("operator,outbound,7,Russia,1.50,0.30,60,0,rub,2026-01-01T00:00:00Z", "bad currency 'rub'"),
    ("operator,outbound,7, ,1.50,0.30,60,0,RUB,2026-01-01T00:00:00Z", "empty region"),
])
def test_a_bad_row_names_file_line_and_problem(tmp_path: Path, row: str, problem: str) -> None:
    message = refused(tmp_path, f"{HEAD}\n{GOOD}\n{row}\n")
    assert ":3: " in message and problem in message


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    other_price = GOOD.replace("1.50", "9.99")
    message = refused(tmp_path, f"{HEAD}\n{GOOD}\n\n{other_price}\n")
    assert ":4: duplicate (line, direction, prefix, valid_from), first on line 2" in message


def test_same_prefix_at_another_time_is_no_duplicate(tmp_path: Path) -> None:
    later = GOOD.replace("2026-01-01", "2026-07-01")
    assert len(load_tariffs(write(tmp_path, f"{HEAD}\n{GOOD}\n{later}\n"))) == 2


@pytest.mark.parametrize(("text", "problem"), [
    ("", ":1: empty file"),
    ("line,direction,prefix,region,rate,connect_fee,increment_s,min_s,currency,valid_from\n", ":1: wrong header"),
    (HEAD.replace(",", ";") + "\n", ":1: wrong header"),
    (HEAD + "\n", "no tariff rows"),
    (f'{HEAD}\n{GOOD}\noperator,outbound,7,"Russia,1.50\n', "malformed CSV"),
])
def test_bad_file_shapes(tmp_path: Path, text: str, problem: str) -> None:
    assert problem in refused(tmp_path, text)


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    with pytest.raises(TariffError, match=r"missing\.csv: cannot read tariff file"):
        load_tariffs(missing)
    path = write(tmp_path, f"{HEAD}\n{GOOD.replace('Russia', 'Россия')}\n", encoding="cp1251")
    with pytest.raises(TariffError, match=r"tariffs\.csv: not UTF-8"):
        load_tariffs(path)


@pytest.mark.parametrize("region", ['=HYPERLINK("http://x","y")', "+7 Moscow", "-", "@SUM(1)", "a" * 65,
                                    "Mos\tcow", "line\nbreak"])
def test_a_region_the_sink_would_refuse_is_refused_at_load(region: str) -> None:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerow(["operator", "outbound", "7", region, "1.50", "0.30", "60", "0", "RUB",
                     "2026-01-01T00:00:00Z"])
    text = out.getvalue()
    with pytest.raises(TariffError, match="region"):
        parse_tariffs(text)
