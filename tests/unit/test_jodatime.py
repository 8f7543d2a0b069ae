"""Joda-Time DateTimeFormat patterns, letter by letter, and Joda zone ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.definition.jodatime import format_datetime, zone_for_id, zone_id
from engine.errors import ExpressionEvalError

# Tuesday 2011-05-24 17:10:05.123 UTC: the AWS guide's example instant, with seconds and millis.
D = datetime(2011, 5, 24, 17, 10, 5, 123456, tzinfo=UTC)
LA = ZoneInfo("America/Los_Angeles")
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("G", "AD"),
        ("GGGG", "AD"),
        ("C", "20"),
        ("CCC", "020"),
        ("Y", "2011"),
        ("YY", "11"),
        ("YYYY", "2011"),
        ("YYYYY", "02011"),
        ("y", "2011"),
        ("yy", "11"),
        ("yyy", "2011"),
        ("yyyy", "2011"),
        ("x", "2011"),
        ("xx", "11"),
        ("xxxx", "2011"),
        ("w", "21"),
        ("ww", "21"),
        ("e", "2"),
        ("ee", "02"),
        ("E", "Tue"),
        ("EEE", "Tue"),
        ("EEEE", "Tuesday"),
        ("D", "144"),
        ("DDDD", "0144"),
        ("M", "5"),
        ("MM", "05"),
        ("MMM", "May"),
        ("MMMM", "May"),
        ("d", "24"),
        ("dd", "24"),
        ("ddd", "024"),
        ("a", "PM"),
        ("K", "5"),
        ("KK", "05"),
        ("h", "5"),
        ("hh", "05"),
        ("H", "17"),
        ("HH", "17"),
        ("k", "17"),
        ("kk", "17"),
        ("m", "10"),
        ("mm", "10"),
        ("s", "5"),
        ("ss", "05"),
        ("S", "1"),
        ("SS", "12"),
        ("SSS", "123"),
        ("SSSSSS", "123000"),
        ("z", "UTC"),
        ("zzzz", "Coordinated Universal Time"),
        ("Z", "+0000"),
        ("ZZ", "+00:00"),
        ("ZZZ", "UTC"),
    ],
)
def test_every_pattern_letter(pattern: str, expected: str) -> None:
    assert format_datetime(D, pattern) == expected


def test_reference_example_from_the_guide() -> None:
    d = datetime(2011, 5, 24, 17, 10, tzinfo=UTC)
    assert format_datetime(d, "YYYY-MM-dd HH:mm:ss z") == "2011-05-24 17:10:00 UTC"


def test_patterns_seen_in_real_definitions() -> None:
    assert format_datetime(D, "YYYY-MM-dd-HH-mm-ss") == "2011-05-24-17-10-05"
    assert format_datetime(D, "YYYY-MM-dd_HHmmss") == "2011-05-24_171005"
    assert format_datetime(D, "YYYY-MM") == "2011-05"
    # The guide writes hh where it means a 24-hour clock; Joda prints a 12-hour clock.
    assert format_datetime(D, "YYYY-MM-dd hh:mm:ss") == "2011-05-24 05:10:05"


@pytest.mark.parametrize(
    ("day", "year_of_era", "year", "weekyear", "week", "two_digit_weekyear"),
    [
        (datetime(2010, 1, 1, tzinfo=UTC), "2010", "2010", "2009", "53", "09"),  # Friday
        (datetime(2008, 12, 29, tzinfo=UTC), "2008", "2008", "2009", "01", "09"),  # Monday
        (datetime(2011, 1, 1, tzinfo=UTC), "2011", "2011", "2010", "52", "10"),  # Saturday
        (datetime(2011, 1, 3, tzinfo=UTC), "2011", "2011", "2011", "01", "11"),  # Monday
        (datetime(2009, 12, 31, tzinfo=UTC), "2009", "2009", "2009", "53", "09"),  # Thursday
    ],
)
def test_year_of_era_year_and_weekyear_around_new_year(
    day: datetime, year_of_era: str, year: str, weekyear: str, week: str,
    two_digit_weekyear: str,
) -> None:
    assert format_datetime(day, "YYYY") == year_of_era
    assert format_datetime(day, "yyyy") == year
    assert format_datetime(day, "xxxx") == weekyear
    assert format_datetime(day, "ww") == week
    assert format_datetime(day, "xx") == two_digit_weekyear


@pytest.mark.parametrize(
    ("hour", "minute", "expected"),
    [
        # hh (1-12), HH (0-23), KK (0-11), kk (1-24), a
        (0, 30, "12 00 00 24 AM"),
        (1, 0, "01 01 01 01 AM"),
        (11, 59, "11 11 11 11 AM"),
        (12, 0, "12 12 00 12 PM"),
        (12, 30, "12 12 00 12 PM"),
        (13, 5, "01 13 01 13 PM"),
        (23, 59, "11 23 11 23 PM"),
    ],
)
def test_clock_hours(hour: int, minute: int, expected: str) -> None:
    d = datetime(2011, 5, 24, hour, minute, tzinfo=UTC)
    assert format_datetime(d, "hh HH KK kk a") == expected


def test_day_of_week_numbers_are_iso() -> None:
    monday = datetime(2011, 5, 23, tzinfo=UTC)
    sunday = datetime(2011, 5, 29, tzinfo=UTC)
    assert format_datetime(monday, "e E EEEE") == "1 Mon Monday"
    assert format_datetime(sunday, "e E EEEE") == "7 Sun Sunday"


def test_month_names() -> None:
    names = [format_datetime(datetime(2011, m, 1, tzinfo=UTC), "MMM/MMMM") for m in (1, 9, 12)]
    assert names == ["Jan/January", "Sep/September", "Dec/December"]


def test_fraction_truncates_to_joda_millisecond_precision() -> None:
    d = datetime(2011, 5, 24, 0, 0, 0, 999999, tzinfo=UTC)
    assert format_datetime(d, "S SS SSS SSSS") == "9 99 999 9990"
    assert format_datetime(datetime(2011, 5, 24, tzinfo=UTC), "SSS") == "000"


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        # America/Los_Angeles: PST in winter, PDT in summer.
        (datetime(2011, 1, 15, 12, 0, tzinfo=UTC), LA,
         "04:00 PST|Pacific Standard Time|-0800|-08:00|America/Los_Angeles"),
        (datetime(2011, 7, 15, 12, 0, tzinfo=UTC), LA,
         "05:00 PDT|Pacific Daylight Time|-0700|-07:00|America/Los_Angeles"),
        # Europe/Berlin: CET in winter, CEST in summer.
        (datetime(2011, 1, 15, 12, 0, tzinfo=UTC), BERLIN,
         "13:00 CET|Central European Time|+0100|+01:00|Europe/Berlin"),
        (datetime(2011, 7, 15, 12, 0, tzinfo=UTC), BERLIN,
         "14:00 CEST|Central European Summer Time|+0200|+02:00|Europe/Berlin"),
    ],
)
def test_zone_names_and_offsets_follow_dst(instant: datetime, zone: ZoneInfo,
                                           expected: str) -> None:
    local = instant.astimezone(zone)
    assert format_datetime(local, "HH:mm z|zzzz|Z|ZZ|ZZZ") == expected


def test_zone_without_a_name_prints_its_offset() -> None:
    # Joda prints the offset for a zone it has no name for; fixed offsets never have names.
    d = datetime(2011, 5, 24, 12, 0, tzinfo=UTC).astimezone(zone_for_id("+05:30"))
    assert format_datetime(d, "HH:mm z|zzzz|Z|ZZ|ZZZ") == "17:30 +05:30|+05:30|+0530|+05:30|+05:30"
    # The tz database only has a numeric abbreviation ("-03") for Sao Paulo nowadays.
    sp = datetime(2021, 5, 24, 12, 0, tzinfo=UTC).astimezone(ZoneInfo("America/Sao_Paulo"))
    assert format_datetime(sp, "z") == "-03:00"


def test_shared_abbreviations_get_the_zones_long_name() -> None:
    shanghai = datetime(2011, 5, 24, tzinfo=UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    chicago = datetime(2011, 1, 24, tzinfo=UTC).astimezone(ZoneInfo("America/Chicago"))
    assert format_datetime(shanghai, "z|zzzz") == "CST|China Standard Time"
    assert format_datetime(chicago, "z|zzzz") == "CST|Central Standard Time"


def test_naive_datetime_is_utc() -> None:
    assert format_datetime(datetime(2011, 5, 24, 17, 10), "HH:mm z Z") == "17:10 UTC +0000"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("yyyy-MM-dd'T'HH:mm:ss", "2011-05-24T17:10:05"),
        ("'week' ww", "week 21"),
        ("hh 'o''clock' a", "05 o'clock PM"),
        ("''", "'"),
        ("''yyyy''", "'2011'"),
        ("'yyyy'", "yyyy"),
        ("'unterminated yyyy", "unterminated yyyy"),
        ("dd/MM/yyyy, HH.mm", "24/05/2011, 17.10"),
        ("[yyyy] #1 ~ ä", "[2011] #1 ~ ä"),  # non-ASCII letters are literal, as in Joda
        ("", ""),
    ],
)
def test_literal_text_and_quoting(pattern: str, expected: str) -> None:
    assert format_datetime(D, pattern) == expected


@pytest.mark.parametrize("letter", ["q", "T", "u", "L", "W", "F", "X", "b", "A", "V", "O"])
def test_unknown_letters_are_errors(letter: str) -> None:
    with pytest.raises(ExpressionEvalError) as info:
        format_datetime(D, f"yyyy-MM-dd {letter}")
    assert repr(letter) in str(info.value)
    assert "pattern letter" in str(info.value)


def test_zone_ids() -> None:
    for utc_alias in ("UTC", "GMT", "Etc/UTC", "Z"):
        assert zone_for_id(utc_alias) is UTC
    assert zone_for_id("America/Los_Angeles") == LA
    fixed = zone_for_id("-08:00")
    assert fixed.utcoffset(None) == timedelta(hours=-8)
    assert zone_for_id("+0530").utcoffset(None) == timedelta(hours=5, minutes=30)
    assert zone_for_id("+00:00") is UTC
    assert zone_id(LA) == "America/Los_Angeles"
    assert zone_id(UTC) == "UTC"
    assert zone_id(ZoneInfo("Etc/UTC")) == "UTC"
    assert zone_id(fixed) == "-08:00"


@pytest.mark.parametrize("bad", ["Mars/Olympus_Mons", "PST", "", "../../etc/passwd", "+25:00",
                                 "America"])
def test_unknown_zone_ids_are_errors(bad: str) -> None:
    with pytest.raises(ExpressionEvalError) as info:
        zone_for_id(bad)
    assert "time zone" in str(info.value)
