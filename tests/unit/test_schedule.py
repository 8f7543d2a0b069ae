"""Schedules by example: periods, timestamps, intervals, calendar arithmetic, edges of time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import ScheduleError
from engine.schedule import (
    Period,
    ScheduleSpec,
    eligible_at,
    format_timestamp,
    parse_period,
    parse_schedule_type,
    parse_timestamp,
)


def ts(text: str) -> datetime:
    return parse_timestamp(text)


@pytest.mark.parametrize(("text", "amount", "unit"), [
    ("1 Day", 1, "days"),
    ("1 days", 1, "days"),
    ("15 Minutes", 15, "minutes"),
    ("1 Hour", 1, "hours"),
    ("2 weeks", 2, "weeks"),
    ("1 month", 1, "months"),
    ("3 YEARS", 3, "years"),
    ("30 seconds", 30, "seconds"),
    ("  12   hours ", 12, "hours"),
])
def test_periods_in_every_unit_and_spelling(text: str, amount: int, unit: str) -> None:
    assert parse_period(text) == Period(amount, unit)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "message"), [
    ("15", "is not of the form 'N units'"),
    ("minutes", "is not of the form 'N units'"),
    ("1.5 hours", "is not of the form 'N units'"),
    ("-1 day", "is not of the form 'N units'"),
    ("15 Period", "unknown unit 'Period'"),
    ("1 fortnight", "unknown unit 'fortnight'"),
    ("0 days", "must be positive"),
    ("", "is not of the form"),
])
def test_bad_periods_say_what_is_valid(text: str, message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_period(text)
    assert message in str(info.value)
    assert text.strip() == "" or repr(text) in str(info.value)


def test_period_lengths_for_minimum_checks() -> None:
    assert parse_period("1 month").min_seconds == 28 * 86400
    assert parse_period("1 month").max_seconds == 31 * 86400
    assert parse_period("15 minutes").min_seconds == 900
    assert parse_period("2 hours").as_timedelta() == timedelta(hours=2)
    assert parse_period("1 year").as_timedelta() == timedelta(days=366)


def test_timestamps_are_utc_and_round_trip() -> None:
    value = ts("2012-01-15T23:59:00")
    assert value == datetime(2012, 1, 15, 23, 59, tzinfo=UTC)
    assert format_timestamp(value) == "2012-01-15T23:59:00"


@pytest.mark.parametrize("text", [
    "2012-01-15 23:59:00", "2012-01-15T23:59:00Z", "2012-01-15", "2012-02-30T00:00:00",
    "2012-13-01T00:00:00", "2012-01-15T24:00:00", "makeDate(2011,5,24)", "",
])
def test_bad_timestamps_are_refused_with_the_format(text: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_timestamp(text)
    assert "YYYY-MM-DDTHH:MM:SS" in str(info.value) or "not a real date" in str(info.value)


def test_schedule_types_any_case_and_the_default() -> None:
    assert parse_schedule_type("CRON") == "cron"
    assert parse_schedule_type(" timeseries ") == "timeseries"
    assert parse_schedule_type("OnDemand") == "ondemand"
    assert parse_schedule_type(None) == "timeseries"
    with pytest.raises(ScheduleError, match="not one of cron, timeseries, ondemand"):
        parse_schedule_type("hourly")


def test_the_guides_hourly_example() -> None:
    spec = ScheduleSpec(parse_period("1 hour"), ts("2012-09-01T00:00:00"),
                        end=ts("2012-10-01T00:00:00"))
    intervals = list(spec.intervals(ts("2012-09-01T00:00:00")))
    assert len(intervals) == 30 * 24
    assert intervals[0] == (ts("2012-09-01T00:00:00"), ts("2012-09-01T01:00:00"))
    assert intervals[-1][1] == ts("2012-10-01T00:00:00")


def test_monthly_from_january_31_keeps_the_month_end() -> None:
    spec = ScheduleSpec(parse_period("1 month"), ts("2024-01-31T06:00:00"), occurrences=5)
    starts = [s for s, _ in spec.intervals(ts("2024-01-31T06:00:00"))]
    assert [format_timestamp(s) for s in starts] == [
        "2024-01-31T06:00:00", "2024-02-29T06:00:00", "2024-03-31T06:00:00",
        "2024-04-30T06:00:00", "2024-05-31T06:00:00"]


def test_yearly_from_a_leap_day() -> None:
    spec = ScheduleSpec(parse_period("1 year"), ts("2020-02-29T00:00:00"), occurrences=5)
    starts = [format_timestamp(s) for s, _ in spec.intervals(ts("2020-02-29T00:00:00"))]
    assert starts == ["2020-02-29T00:00:00", "2021-02-28T00:00:00", "2022-02-28T00:00:00",
                      "2023-02-28T00:00:00", "2024-02-29T00:00:00"]


def test_end_date_time_is_the_last_boundary() -> None:
    spec = ScheduleSpec(parse_period("1 day"), ts("2024-01-01T00:00:00"),
                        end=ts("2024-01-03T12:00:00"))
    intervals = list(spec.intervals(ts("2024-01-01T00:00:00")))
    # an interval must start before endDateTime; the last one may run past it
    assert [format_timestamp(s) for s, _ in intervals] == [
        "2024-01-01T00:00:00", "2024-01-02T00:00:00", "2024-01-03T00:00:00"]


def test_first_activation_starts_at_the_activation_time() -> None:
    spec = ScheduleSpec(parse_period("15 minutes"), None, occurrences=2)
    activation = ts("2024-05-05T10:07:00")
    assert list(spec.intervals(activation)) == [
        (activation, ts("2024-05-05T10:22:00")), (ts("2024-05-05T10:22:00"),
                                                  ts("2024-05-05T10:37:00"))]
    assert spec.first_start(activation) == activation
    assert spec.last_end(activation) == ts("2024-05-05T10:37:00")


def test_window_picks_the_intervals_that_start_inside_it() -> None:
    spec = ScheduleSpec(parse_period("1 hour"), ts("2024-01-01T00:00:00"))
    got = list(spec.intervals(ts("2024-01-01T00:00:00"), ts("2024-03-01T01:30:00"),
                              ts("2024-03-01T04:00:00")))
    assert [format_timestamp(s) for s, _ in got] == [
        "2024-03-01T02:00:00", "2024-03-01T03:00:00"]


def test_open_ended_schedule_needs_a_window_end() -> None:
    spec = ScheduleSpec(parse_period("1 day"), ts("2024-01-01T00:00:00"))
    with pytest.raises(ScheduleError, match="open-ended"):
        list(spec.intervals(ts("2024-01-01T00:00:00")))
    assert spec.last_end(ts("2024-01-01T00:00:00")) is None


def test_end_not_after_start_is_refused_quoting_both() -> None:
    spec = ScheduleSpec(parse_period("1 day"), ts("2024-01-02T00:00:00"),
                        end=ts("2024-01-01T00:00:00"))
    with pytest.raises(ScheduleError) as info:
        list(spec.intervals(ts("2024-01-02T00:00:00")))
    assert "2024-01-01T00:00:00" in str(info.value)
    assert "2024-01-02T00:00:00" in str(info.value)


def test_end_and_occurrences_together_are_refused() -> None:
    with pytest.raises(ScheduleError, match="both endDateTime and occurrences"):
        ScheduleSpec(parse_period("1 day"), ts("2024-01-01T00:00:00"),
                     end=ts("2024-02-01T00:00:00"), occurrences=3)
    with pytest.raises(ScheduleError, match="at least 1"):
        ScheduleSpec(parse_period("1 day"), ts("2024-01-01T00:00:00"), occurrences=0)


def test_the_calendar_ends_in_9999_without_an_overflow() -> None:
    spec = ScheduleSpec(parse_period("1 year"), ts("9997-06-01T00:00:00"))
    got = list(spec.intervals(ts("9997-06-01T00:00:00"), None, ts("9999-12-31T23:59:59")))
    assert [format_timestamp(s) for s, _ in got] == ["9997-06-01T00:00:00",
                                                      "9998-06-01T00:00:00"]
    with pytest.raises(ScheduleError, match="9999"):
        parse_period("99999999999 years").after(ts("2024-01-01T00:00:00"))
    huge = ScheduleSpec(parse_period("99999999999 days"), ts("2024-01-01T00:00:00"))
    assert list(huge.intervals(ts("2024-01-01T00:00:00"), None,
                               ts("2025-01-01T00:00:00"))) == []


def test_eligibility_cron_at_start_timeseries_at_end() -> None:
    start, end = ts("2024-01-01T22:00:00"), ts("2024-01-01T22:30:00")
    assert eligible_at("cron", start, end) == start
    assert eligible_at("timeseries", start, end) == end
    assert eligible_at("ondemand", start, start) == start
