"""Schedule arithmetic, property-based: whatever the period, start and bounds, instances are
contiguous and non-overlapping, their count is the occurrences, endDateTime is the last
boundary, calendar units keep their day of month (clamped), slicing a range into windows gives
the same instances as the whole, and cron runs at the interval start, timeseries at its end."""

from __future__ import annotations

import calendar
import itertools
import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.definition import load
from engine.plan import plan
from engine.schedule import Period, ScheduleSpec, format_timestamp

UNITS = ("seconds", "minutes", "hours", "days", "weeks", "months", "years")
#: amounts kept small enough that a few dozen intervals stay within the years 1-9999
MAX_AMOUNT = {"seconds": 100_000, "minutes": 5_000, "hours": 500, "days": 400, "weeks": 60,
              "months": 24, "years": 3}

FAST = settings(max_examples=60, deadline=None)

periods = st.sampled_from(UNITS).flatmap(
    lambda unit: st.integers(1, MAX_AMOUNT[unit]).map(lambda n: Period(n, unit)))
starts = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 12, 31),
                      timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0))


def assert_contiguous(intervals: list[tuple[datetime, datetime]]) -> None:
    for start, end in intervals:
        assert start < end
    for (_, end), (next_start, _) in itertools.pairwise(intervals):
        assert end == next_start


@FAST
@given(periods, starts, st.integers(1, 40))
def test_occurrences_give_that_many_contiguous_intervals(period: Period, start: datetime,
                                                         occurrences: int) -> None:
    spec = ScheduleSpec(period, start, occurrences=occurrences)
    intervals = list(spec.intervals(start))
    assert len(intervals) == occurrences
    assert intervals[0][0] == start
    assert_contiguous(intervals)
    # each boundary is computed from the start in one step (no drift)
    for k, (s, _) in enumerate(intervals):
        assert s == period.after(start, k)
    assert intervals[-1][1] == spec.last_end(start)


@FAST
@given(periods, starts, st.integers(1, 30), st.floats(0.0, 1.0))
def test_end_date_time_is_respected(period: Period, start: datetime, span: int,
                                    fraction: float) -> None:
    whole = period.after(start, span) - start
    end = start + timedelta(seconds=max(1, int(whole.total_seconds() * fraction)))
    spec = ScheduleSpec(period, start, end=end)
    intervals = list(spec.intervals(start))
    assert intervals, "an end after the start always leaves the first interval"
    assert all(s < end for s, _ in intervals)
    assert_contiguous(intervals)
    # nothing is missing: the next interval would start at or after the end
    assert period.after(start, len(intervals)) >= end


@FAST
@given(st.sampled_from(["months", "years"]), st.integers(1, 14), starts, st.integers(1, 30))
def test_calendar_units_keep_the_day_of_month_clamped(unit: str, amount: int, start: datetime,
                                                      occurrences: int) -> None:
    period = Period(amount, unit)  # type: ignore[arg-type]
    spec = ScheduleSpec(period, start, occurrences=occurrences)
    for s, _ in spec.intervals(start):
        last_day = calendar.monthrange(s.year, s.month)[1]
        assert s.day == min(start.day, last_day)
        assert s.time() == start.time()


@FAST
@given(st.integers(1, 12), st.integers(1972, 2400))
def test_month_ends_and_leap_days(months: int, year: int) -> None:
    jan31 = datetime(year, 1, 31, tzinfo=UTC)
    monthly = ScheduleSpec(Period(months, "months"), jan31, occurrences=13)
    for s, _ in monthly.intervals(jan31):
        assert s.day == calendar.monthrange(s.year, s.month)[1]  # always the month's last day
    leap_year = year - year % 4
    while not calendar.isleap(leap_year):
        leap_year -= 4
    feb29 = datetime(leap_year, 2, 29, 12, tzinfo=UTC)
    yearly = ScheduleSpec(Period(1, "years"), feb29, occurrences=9)
    for s, _ in yearly.intervals(feb29):
        assert (s.month, s.day) == (2, 29 if calendar.isleap(s.year) else 28)


@FAST
@given(periods, starts, st.integers(2, 60), st.lists(st.floats(0.0, 1.0), max_size=5))
def test_window_slices_give_the_same_instances_as_the_whole(
        period: Period, start: datetime, span: int, cuts: list[float]) -> None:
    end = period.after(start, span)
    spec = ScheduleSpec(period, start)
    whole = list(spec.intervals(start, start, end))
    total = (end - start).total_seconds()
    bounds = sorted({start, end, *(start + timedelta(seconds=int(total * c)) for c in cuts)})
    sliced = []
    for lo, hi in itertools.pairwise(bounds):
        sliced.extend(spec.intervals(start, lo, hi))
    assert sliced == whole
    assert len(whole) == span


@FAST
@given(periods, starts, starts, st.integers(1, 20))
def test_a_window_far_from_the_start_finds_the_exact_boundaries(
        period: Period, start: datetime, window_start: datetime, count: int) -> None:
    spec = ScheduleSpec(period, start)
    got = list(spec.intervals(start, window_start, period.after(max(start, window_start),
                                                                count)))
    assert got, "a window of several periods holds an interval"
    assert_contiguous(got)
    assert got[0][0] >= window_start
    # the instance before the first one found starts before the window (none skipped)...
    k = 0 if got[0][0] == start else _index(period, start, got[0][0])
    if k > 0:
        assert period.after(start, k - 1) < window_start
    # ...and every boundary is start + k * period
    for offset, (s, e) in enumerate(got):
        assert s == period.after(start, k + offset)
        assert e == period.after(start, k + offset + 1)


def _index(period: Period, start: datetime, boundary: datetime) -> int:
    """k with start + k * period == boundary, by bisection (the boundaries are monotonic)."""
    lo, hi = 0, 1
    while period.after(start, hi) < boundary:
        lo, hi = hi, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        if period.after(start, mid) < boundary:
            lo = mid + 1
        else:
            hi = mid
    assert period.after(start, lo) == boundary
    return lo


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["cron", "timeseries", None]), st.integers(15, 600), starts,
       st.integers(1, 6))
def test_cron_is_eligible_at_start_and_timeseries_at_end(schedule_type: str | None,
                                                         minutes: int, start: datetime,
                                                         occurrences: int) -> None:
    default: dict[str, object] = {"id": "Default", "schedule": {"ref": "S"}}
    if schedule_type:
        default["scheduleType"] = schedule_type
    doc = {"objects": [
        default,
        {"id": "S", "type": "Schedule", "period": f"{minutes} minutes",
         "startDateTime": format_timestamp(start), "occurrences": str(occurrences)},
        {"id": "A", "type": "ShellCommandActivity", "command": "true", "workerGroup": "g"},
    ]}
    definition, report = load("<schedule test>", text=json.dumps(doc), strict=True)
    assert report.ok, report.errors
    planned = plan(definition, start, start + timedelta(minutes=minutes * (occurrences + 1)))
    assert len(planned.instances) == occurrences
    for inst in planned.instances:
        assert inst.scheduled_end - inst.scheduled_start == timedelta(minutes=minutes)
        expected = inst.scheduled_start if schedule_type == "cron" else inst.scheduled_end
        assert inst.eligible_at == expected
