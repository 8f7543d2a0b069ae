"""The function library: every function, Joda date arithmetic, argument checks, rendering."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from engine.definition.functions import FUNCTIONS, as_datetime, as_number, render
from engine.errors import ExpressionEvalError

# The AWS guide's example value: May 24, 2011 @ 5:10 pm GMT (a Tuesday).
D = datetime(2011, 5, 24, 17, 10, tzinfo=UTC)
LA = ZoneInfo("America/Los_Angeles")
BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def call(name: str, *args: object) -> object:
    return FUNCTIONS[name](*args)


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        # The guide's examples.
        ("day", (D,), 24),
        ("dayOfYear", (D,), 144),
        ("hour", (D,), 17),
        ("minute", (D,), 10),
        ("month", (D,), 5),
        ("year", (D,), 2011),
        ("firstOfMonth", (D,), utc(2011, 5, 1, 17, 10)),
        ("format", (D, "YYYY-MM-dd HH:mm:ss z"), "2011-05-24 17:10:00 UTC"),
        ("makeDate", (2011, 5, 24), utc(2011, 5, 24)),
        ("makeDateTime", (2011, 5, 24, 14, 21), utc(2011, 5, 24, 14, 21)),
        ("midnight", (utc(2011, 5, 25, 17, 10),), utc(2011, 5, 25)),
        ("sunday", (D,), utc(2011, 5, 22, 17, 10)),
        ("yesterday", (D,), utc(2011, 5, 23, 17, 10)),
        # Day-of-year and leap years.
        ("dayOfYear", (utc(2012, 12, 31),), 366),
        ("dayOfYear", (utc(2011, 12, 31),), 365),
        ("dayOfYear", (utc(2012, 3, 1),), 61),
        # sunday: the same day on a Sunday, across month and year boundaries.
        ("sunday", (utc(2011, 5, 22, 8, 0),), utc(2011, 5, 22, 8, 0)),
        ("sunday", (utc(2011, 5, 23),), utc(2011, 5, 22)),
        ("sunday", (utc(2011, 5, 28),), utc(2011, 5, 22)),
        ("sunday", (utc(2011, 6, 1, 3, 4),), utc(2011, 5, 29, 3, 4)),
        ("sunday", (utc(2011, 1, 1),), utc(2010, 12, 26)),
        # yesterday and firstOfMonth at boundaries.
        ("yesterday", (utc(2011, 3, 1),), utc(2011, 2, 28)),
        ("yesterday", (utc(2012, 3, 1),), utc(2012, 2, 29)),
        ("yesterday", (utc(2011, 1, 1, 0, 30),), utc(2010, 12, 31, 0, 30)),
        ("firstOfMonth", (utc(2012, 2, 29, 23, 59),), utc(2012, 2, 1, 23, 59)),
        ("midnight", (utc(2011, 5, 25, 0, 0),), utc(2011, 5, 25)),
        ("makeDate", (2012, 2, 29), utc(2012, 2, 29)),
        # plus/minus by exact units.
        ("plusMinutes", (D, 90), utc(2011, 5, 24, 18, 40)),
        ("minusMinutes", (D, 30), utc(2011, 5, 24, 16, 40)),
        ("minusMinutes", (utc(2011, 1, 1, 0, 5), 10), utc(2010, 12, 31, 23, 55)),
        ("plusHours", (D, 7), utc(2011, 5, 25, 0, 10)),
        ("minusHours", (D, 18), utc(2011, 5, 23, 23, 10)),
        ("plusDays", (D, 8), utc(2011, 6, 1, 17, 10)),
        ("plusDays", (D, -24), utc(2011, 4, 30, 17, 10)),
        ("minusDays", (utc(2012, 3, 1), 1), utc(2012, 2, 29)),
        ("plusWeeks", (D, 2), utc(2011, 6, 7, 17, 10)),
        ("minusWeeks", (D, 21), utc(2010, 12, 28, 17, 10)),
        # Months and years clamp to the end of the month, like Joda.
        ("plusMonths", (utc(2011, 1, 31), 1), utc(2011, 2, 28)),
        ("plusMonths", (utc(2012, 1, 31), 1), utc(2012, 2, 29)),
        ("plusMonths", (utc(2011, 1, 31), 3), utc(2011, 4, 30)),
        ("plusMonths", (utc(2011, 11, 30), 3), utc(2012, 2, 29)),
        ("minusMonths", (utc(2011, 3, 31), 1), utc(2011, 2, 28)),
        ("minusMonths", (utc(2011, 1, 15), 1), utc(2010, 12, 15)),
        ("plusYears", (utc(2012, 2, 29), 1), utc(2013, 2, 28)),
        ("plusYears", (utc(2012, 2, 29), 4), utc(2016, 2, 29)),
        ("minusYears", (utc(2012, 2, 29), 1), utc(2011, 2, 28)),
        # Periods in the schedule syntax.
        ("plusPeriod", (D, "1 day"), utc(2011, 5, 25, 17, 10)),
        ("plusPeriod", (D, "15 Minutes"), utc(2011, 5, 24, 17, 25)),
        ("plusPeriod", (utc(2011, 1, 31), "1 Month"), utc(2011, 2, 28)),
        ("plusPeriod", (D, "1 day 2 hours"), utc(2011, 5, 25, 19, 10)),
        ("plusPeriod", (D, "2 weeks"), utc(2011, 6, 7, 17, 10)),
        ("plusPeriod", (D, "1 year"), utc(2012, 5, 24, 17, 10)),
        ("minusPeriod", (D, "1 Hour"), utc(2011, 5, 24, 16, 10)),
        ("minusPeriod", (utc(2011, 3, 31), "1 months"), utc(2011, 2, 28)),
        # Strings are read as DateTimes and numbers wherever those are expected.
        ("day", ("2011-05-24T17:10:00",), 24),
        ("hour", ("2011-05-24 17:10:00",), 17),
        ("minute", ("2011-05-24T17:10:00Z",), 10),
        ("plusDays", ("2011-05-24T17:10:00", "2"), utc(2011, 5, 26, 17, 10)),
        ("makeDate", ("2011", "5", "24"), utc(2011, 5, 24)),
        ("makeDate", (2011.0, 5, 24), utc(2011, 5, 24)),
        ("format", ("2011-05-24T17:10:00", "dd.MM.yyyy"), "24.05.2011"),
    ],
)
def test_function_table(name: str, args: tuple[object, ...], expected: object) -> None:
    result = call(name, *args)
    assert result == expected
    if isinstance(expected, datetime):
        assert isinstance(result, datetime)
        assert result.utcoffset() == expected.utcoffset()


def test_every_documented_function_is_in_the_library() -> None:
    documented = {
        "day", "dayOfYear", "hour", "minute", "month", "year", "firstOfMonth", "format",
        "makeDate", "makeDateTime", "midnight", "sunday", "yesterday", "inTimeZone",
        "plusPeriod", "minusPeriod",
    } | {f"{sign}{unit}" for sign in ("plus", "minus")
         for unit in ("Minutes", "Hours", "Days", "Weeks", "Months", "Years")}
    assert documented <= set(FUNCTIONS)
    # names are case-sensitive
    assert "Day" not in FUNCTIONS
    assert "plusdays" not in FUNCTIONS


def test_signatures_read_like_the_guide() -> None:
    assert FUNCTIONS["format"].signature == "String format(DateTime, String)"
    assert FUNCTIONS["makeDateTime"].signature == (
        "DateTime makeDateTime(int, int, int, int, int)")
    assert FUNCTIONS["day"].signature == "int day(DateTime)"


# --- time zones and DST -----------------------------------------------------------------------


def test_in_time_zone_is_the_same_instant() -> None:
    local = call("inTimeZone", D, "America/Los_Angeles")
    assert isinstance(local, datetime)
    assert local == D
    assert (local.hour, local.utcoffset().total_seconds()) == (10, -7 * 3600)  # type: ignore[union-attr]
    assert call("format", local, "HH:mm z") == "10:10 PDT"
    assert call("hour", local) == 10
    assert call("inTimeZone", D, "UTC").tzinfo is UTC  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        # Los Angeles springs forward 2011-03-13 02:00 PST -> 03:00 PDT (10:00 UTC) ...
        (utc(2011, 3, 13, 9, 59), "America/Los_Angeles", "2011-03-13 01:59 PST"),
        (utc(2011, 3, 13, 10, 0), "America/Los_Angeles", "2011-03-13 03:00 PDT"),
        # ... and falls back 2011-11-06 02:00 PDT -> 01:00 PST (09:00 UTC): 01:30 happens twice.
        (utc(2011, 11, 6, 8, 30), "America/Los_Angeles", "2011-11-06 01:30 PDT"),
        (utc(2011, 11, 6, 9, 30), "America/Los_Angeles", "2011-11-06 01:30 PST"),
        # Berlin springs forward 2011-03-27 02:00 CET -> 03:00 CEST (01:00 UTC) ...
        (utc(2011, 3, 27, 0, 59), "Europe/Berlin", "2011-03-27 01:59 CET"),
        (utc(2011, 3, 27, 1, 0), "Europe/Berlin", "2011-03-27 03:00 CEST"),
        # ... and falls back 2011-10-30 03:00 CEST -> 02:00 CET (01:00 UTC).
        (utc(2011, 10, 30, 0, 30), "Europe/Berlin", "2011-10-30 02:30 CEST"),
        (utc(2011, 10, 30, 1, 30), "Europe/Berlin", "2011-10-30 02:30 CET"),
    ],
)
def test_in_time_zone_across_dst_changes(instant: datetime, zone: str, expected: str) -> None:
    local = call("inTimeZone", instant, zone)
    assert call("format", local, "yyyy-MM-dd HH:mm z") == expected


def test_hours_are_exact_durations_across_dst() -> None:
    before = call("inTimeZone", utc(2011, 3, 13, 9, 30), "America/Los_Angeles")  # 01:30 PST
    after = call("plusHours", before, 1)
    assert call("format", after, "HH:mm z") == "03:30 PDT"
    assert after == utc(2011, 3, 13, 10, 30)
    back = call("minusMinutes", after, 60)
    assert back == before


def test_days_keep_the_wall_clock_across_dst() -> None:
    # 2011-03-12 09:00 PST + 1 day = 2011-03-13 09:00 PDT: 23 hours later.
    start = call("inTimeZone", utc(2011, 3, 12, 17, 0), "America/Los_Angeles")
    nxt = call("plusDays", start, 1)
    assert call("format", nxt, "yyyy-MM-dd HH:mm z") == "2011-03-13 09:00 PDT"
    assert nxt == utc(2011, 3, 13, 16, 0)
    # Berlin: 2011-10-29 12:00 CEST + 1 day = 2011-10-30 12:00 CET: 25 hours later.
    start = call("inTimeZone", utc(2011, 10, 29, 10, 0), "Europe/Berlin")
    nxt = call("plusDays", start, 1)
    assert call("format", nxt, "yyyy-MM-dd HH:mm z") == "2011-10-30 12:00 CET"
    assert nxt == utc(2011, 10, 30, 11, 0)


def test_wall_time_in_a_dst_gap_moves_forward_and_overlap_takes_the_earlier() -> None:
    # 2011-03-12 02:30 PST + 1 day would be 02:30 on the 13th, which does not exist.
    start = call("inTimeZone", utc(2011, 3, 12, 10, 30), "America/Los_Angeles")
    assert call("format", call("plusDays", start, 1), "HH:mm z") == "03:30 PDT"
    # 2011-11-05 01:30 PDT + 1 day: 01:30 on the 6th happens twice; Joda takes the earlier.
    start = call("inTimeZone", utc(2011, 11, 5, 8, 30), "America/Los_Angeles")
    nxt = call("plusDays", start, 1)
    assert isinstance(nxt, datetime)
    # (compare in UTC: Python never equates an ambiguous wall time with another zone's time)
    assert nxt.astimezone(UTC) == utc(2011, 11, 6, 8, 30)
    assert call("format", nxt, "HH:mm z") == "01:30 PDT"


def test_midnight_and_first_of_month_in_a_zone() -> None:
    local = call("inTimeZone", utc(2011, 3, 27, 12, 0), "Europe/Berlin")  # 14:00 CEST
    assert call("midnight", local) == utc(2011, 3, 26, 23, 0)  # 00:00 CET
    assert call("format", call("firstOfMonth", local), "yyyy-MM-dd HH:mm z") == (
        "2011-03-01 14:00 CET")
    assert call("day", call("sunday", local)) == 27


# --- argument checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("format", (D,), "format() takes (DateTime, String), got 1 argument"),
        ("format", (), "format() takes (DateTime, String), got 0 arguments"),
        ("day", (D, D), "day() takes (DateTime), got 2 arguments"),
        ("makeDate", (2011, 5), "makeDate() takes (int, int, int), got 2 arguments"),
        ("format", (D, D), "format() takes (DateTime, String); argument 2 is a DateTime, "
                           "not a String"),
        ("day", (5,), "day() takes (DateTime); argument 1 is a Integer, not a DateTime"),
        ("plusDays", (D, "x"), "plusDays() takes (DateTime, int); argument 2 is a String that "
                               "does not read as an integer"),
        ("plusDays", (D, 1.5), "plusDays() takes (DateTime, int); argument 2 is a Double, "
                               "not an int"),
        ("day", ("24 May 2011",), "day() takes (DateTime); argument 1 is a String that does "
                                  "not read as a DateTime (expected YYYY-MM-DDTHH:MM:SS)"),
        ("day", ("2011-02-30T00:00:00",), "does not read as a DateTime"),
        ("makeDate", (2011, 2, 29), "2011-02-29 00:00 is not a valid date"),
        ("makeDateTime", (2011, 5, 24, 24, 0), "is not a valid date and time"),
        ("inTimeZone", (D, "Nowhere/Special"), "unknown time zone 'Nowhere/Special'"),
        ("plusPeriod", (D, "1 fortnight"), "a period reads 'N unit'"),
        ("plusPeriod", (D, "day"), "a period reads 'N unit'"),
        ("format", (D, "yyyy-qq"), "'q' is not a date format pattern letter"),
        ("plusYears", (utc(9999, 1, 1), 1), "plusYears() gives a date outside the supported"),
    ],
)
def test_argument_errors_name_the_function_and_types(name: str, args: tuple[object, ...],
                                                     message: str) -> None:
    with pytest.raises(ExpressionEvalError) as info:
        call(name, *args)
    assert message in str(info.value)


def test_errors_never_quote_argument_values() -> None:
    secret = "hunter2-s3cr3t"
    for name, args in (("day", (secret,)), ("plusDays", (D, secret)), ("format", (D, D))):
        with pytest.raises(ExpressionEvalError) as info:
            call(name, *args)
        assert secret not in str(info.value)


def test_list_arguments_map_over_elements() -> None:
    days = call("day", [utc(2011, 5, 1), "2011-05-02T00:00:00", D])
    assert days == [1, 2, 24]
    # Several list arguments: every combination, in order.
    shifted = call("plusDays", [utc(2011, 5, 1), utc(2011, 6, 1)], [1, 2])
    assert shifted == [utc(2011, 5, 2), utc(2011, 5, 3), utc(2011, 6, 2), utc(2011, 6, 3)]
    assert call("format", D, ["yyyy", "MM"]) == ["2011", "05"]
    assert call("day", []) == []


# --- values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "plain"),
        (3, "3"),
        (-17, "-17"),
        (True, "true"),
        (False, "false"),
        (4.0, "4.0"),
        (0.5, "0.5"),
        (-2.5, "-2.5"),
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (1e10, "1.0E10"),
        (9999999.0, "9999999.0"),
        (10000000.0, "1.0E7"),
        (123456789.125, "1.23456789125E8"),
        (1.5e-10, "1.5E-10"),
        (0.1 + 0.2, "0.30000000000000004"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (float("inf"), "Infinity"),
        (float("nan"), "NaN"),
        (utc(2015, 7, 19, 22, 48, 30), "2015-07-19T22:48:30"),
        (datetime(2011, 5, 24, 17, 10, 5, 999999, tzinfo=UTC), "2011-05-24T17:10:05"),
        (utc(2011, 5, 24, 17, 10).astimezone(LA), "2011-05-24T10:10:00"),
        (utc(5, 1, 2, 3, 4, 5), "0005-01-02T03:04:05"),
        (["a", 1, 0.5], '["a", "1", "0.5"]'),
    ],
)
def test_render(value: object, text: str) -> None:
    assert render(value) == text


def test_render_refuses_what_is_not_a_value() -> None:
    with pytest.raises(ExpressionEvalError):
        render(None)
    with pytest.raises(ExpressionEvalError):
        render(object())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2011-05-24T17:10:00", utc(2011, 5, 24, 17, 10)),
        ("2011-05-24 17:10:00", utc(2011, 5, 24, 17, 10)),
        ("2011-05-24T17:10:00Z", utc(2011, 5, 24, 17, 10)),
        ("2011-05-24T0:00:00z", utc(2011, 5, 24)),
        ("2011-05-24T17:10", utc(2011, 5, 24, 17, 10)),
        ("2011-05-24", utc(2011, 5, 24)),
        ("2011-05-24T17:10:00.250", datetime(2011, 5, 24, 17, 10, 0, 250000, tzinfo=UTC)),
        ("2011-05-24T17:10:00-07:00", utc(2011, 5, 25, 0, 10)),
        ("2011-05-24T17:10:00+0200", utc(2011, 5, 24, 15, 10)),
        (" 2011-05-24T17:10:00 ", utc(2011, 5, 24, 17, 10)),
        ("2011-13-01T00:00:00", None),
        ("24/05/2011", None),
        ("", None),
        ("2011-05-24T17:10:00 PST", None),
    ],
)
def test_datetime_strings(text: str, expected: datetime | None) -> None:
    assert as_datetime(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("5", 5), ("-12", -12), ("2.5", 2.5), (".5", 0.5), ("1e3", 1000.0), (" 7 ", 7),
     (3, 3), (2.5, 2.5), ("abc", None), ("", None), ("٣", None), (True, None), (D, None),
     ("5 days", None)],
)
def test_numbers_from_strings(value: object, expected: object) -> None:
    result = as_number(value)
    assert result == expected
    assert type(result) is type(expected)
