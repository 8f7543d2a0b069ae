"""Schedules: periods, timestamps, and the intervals a Schedule object yields.

Interval *k* of a schedule is ``[start + k*period, start + (k+1)*period)``. The k-th boundary is
computed from the start in one step (``start + k*period``), never by adding one period k times,
so month periods keep their day of month: a monthly schedule from Jan 31 runs on Jan 31, Feb 28
(29 in a leap year), Mar 31, Apr 30... (Joda's clamping, and no drift to the 28th).

All timestamps are timezone-aware UTC ``datetime`` objects; the text form everywhere is
``YYYY-MM-DDTHH:MM:SS``.

Decisions where AWS is silent: an unset ``scheduleType`` is ``timeseries`` (the original
behaviour, reference section 2, inferred); ``endDateTime`` is the last boundary, so an interval
runs only if it starts before it (the last one may end after it); periods also accept seconds
(validation keeps the 15-minute minimum for a Schedule); intervals stop before the year 10000.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from dateutil.relativedelta import relativedelta

from engine.errors import ScheduleError

Unit = Literal["seconds", "minutes", "hours", "days", "weeks", "months", "years"]
ScheduleType = Literal["cron", "timeseries", "ondemand"]

_UNITS: dict[str, Unit] = {
    "second": "seconds", "seconds": "seconds", "sec": "seconds", "secs": "seconds",
    "minute": "minutes", "minutes": "minutes", "min": "minutes", "mins": "minutes",
    "hour": "hours", "hours": "hours",
    "day": "days", "days": "days",
    "week": "weeks", "weeks": "weeks",
    "month": "months", "months": "months",
    "year": "years", "years": "years",
}
_PERIOD_RE = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")
_TS_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$")

#: The shortest length each unit can have, for minimum-period checks (a month is >= 28 days).
_MIN_SECONDS: dict[Unit, int] = {
    "seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 7 * 86400,
    "months": 28 * 86400, "years": 365 * 86400,
}
_MAX_SECONDS: dict[Unit, int] = {**_MIN_SECONDS, "months": 31 * 86400, "years": 366 * 86400}

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"


@dataclass(frozen=True)
class Period:
    """A calendar period such as ``15 minutes`` or ``1 month``."""

    amount: int
    unit: Unit

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}"

    def times(self, k: int) -> relativedelta | timedelta:
        n = self.amount * k
        try:
            match self.unit:
                case "months":
                    return relativedelta(months=n)
                case "years":
                    return relativedelta(years=n)
                case _:
                    return timedelta(**{self.unit: n})
        except (OverflowError, ValueError):
            raise ScheduleError(f"{k} x {self} is beyond the year 9999") from None

    def after(self, dt: datetime, k: int = 1) -> datetime:
        """``dt`` plus ``k`` periods, with calendar arithmetic for months and years.

        Raises :class:`ScheduleError` when the result is beyond the years 1-9999."""
        try:
            return dt + self.times(k)
        except (OverflowError, ValueError):
            raise ScheduleError(f"{format_timestamp(dt)} + {k} x {self} is beyond the year "
                                "9999") from None

    def before(self, dt: datetime, k: int = 1) -> datetime:
        try:
            return dt - self.times(k)
        except (OverflowError, ValueError):
            raise ScheduleError(f"{format_timestamp(dt)} - {k} x {self} is before the year "
                                "1") from None

    @property
    def min_seconds(self) -> int:
        return self.amount * _MIN_SECONDS[self.unit]

    @property
    def max_seconds(self) -> int:
        return self.amount * _MAX_SECONDS[self.unit]

    def as_timedelta(self) -> timedelta:
        """The length of one period, using the longest month/year (for timeouts and delays)."""
        if self.unit in ("months", "years"):
            return timedelta(seconds=self.max_seconds)
        return timedelta(**{self.unit: self.amount})


def short(text: str, limit: int = 60) -> str:
    """``text`` quoted for a message, cut when it is long (a value can be 10 KiB)."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text):,} chars)"


def parse_period(text: str) -> Period:
    """Parse ``"N units"``, any case, singular or plural: ``1 Day``, ``15 Minutes``."""
    m = _PERIOD_RE.match(text)
    if not m:
        raise ScheduleError(
            f"period {short(text)} is not of the form 'N units' (units: seconds, minutes, hours, "
            "days, weeks, months, years)")
    unit = _UNITS.get(m.group(2).lower())
    if unit is None:
        raise ScheduleError(
            f"period {short(text)} has an unknown unit {short(m.group(2))} (use seconds, "
            "minutes, hours, days, weeks, months or years)")
    digits = m.group(1).lstrip("+0") or "0"
    if len(digits) > 12:  # beyond any date arithmetic (and Python's int-string limit)
        raise ScheduleError(f"period {short(text)} is far too long ({len(digits)} digits)")
    amount = int(m.group(1))
    if amount <= 0:
        raise ScheduleError(f"period {text!r} must be positive")
    return Period(amount, unit)


def parse_lookback(text: str) -> timedelta:
    """An incremental copy's look-back: ``30s``, ``5m``, ``1h``, ``2d``, or a period
    (``5 minutes``)."""
    raw = text.strip()
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    try:
        if raw[:-1].isdigit() and raw[-1:] in units and len(raw) < 14:
            return timedelta(**{units[raw[-1]]: int(raw[:-1])})
        return parse_period(raw).as_timedelta()
    except OverflowError:
        raise ScheduleError(f"{short(raw)} is far too long a look-back") from None
    except ScheduleError as exc:
        raise ScheduleError(f"{short(raw)} is not a period (30s, 5m, 1h, 2d, or an AWS "
                            f"period such as '5 minutes'): {exc}") from None


def parse_timestamp(text: str) -> datetime:
    """Parse ``YYYY-MM-DDTHH:MM:SS`` as UTC."""
    m = _TS_RE.match(text.strip())
    if not m:
        raise ScheduleError(f"timestamp {short(text)} is not of the form YYYY-MM-DDTHH:MM:SS "
                            "(UTC)")
    try:
        year, month, day, hour, minute, second = (int(g) for g in m.groups())
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise ScheduleError(f"timestamp {text!r} is not a real date and time: {exc}") from None


def format_timestamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_schedule_type(text: str | None) -> ScheduleType:
    """``cron``, ``timeseries`` or ``ondemand`` in any case; unset means ``timeseries``."""
    if text is None:
        return "timeseries"
    value = text.strip().lower()
    if value not in ("cron", "timeseries", "ondemand"):
        raise ScheduleError(
            f"scheduleType {text!r} is not one of cron, timeseries, ondemand")
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class ScheduleSpec:
    """A Schedule object's fields, parsed.

    ``start`` is None when the schedule starts at first activation (``startAt:
    FIRST_ACTIVATION_DATE_TIME``); the activation time stands in for it.
    """

    period: Period
    start: datetime | None
    end: datetime | None = None
    occurrences: int | None = None

    def __post_init__(self) -> None:
        if self.end is not None and self.occurrences is not None:
            raise ScheduleError("a schedule cannot have both endDateTime and occurrences")
        if self.occurrences is not None and self.occurrences < 1:
            raise ScheduleError(f"occurrences must be at least 1, got {self.occurrences}")

    def first_start(self, activation: datetime) -> datetime:
        return self.start if self.start is not None else activation

    def last_end(self, activation: datetime) -> datetime | None:
        """The end of the last interval, or None when the schedule is open-ended."""
        first = self.first_start(activation)
        if self.occurrences is not None:
            return self.period.after(first, self.occurrences)
        return self.end

    def intervals(self, activation: datetime, window_start: datetime | None = None,
                  window_end: datetime | None = None) -> Iterator[tuple[datetime, datetime]]:
        """Intervals whose start lies in ``[window_start, window_end)``, in order.

        Bounded by the schedule's own end (``endDateTime`` is the last boundary: an interval
        must start before it) and ``occurrences``. An open-ended schedule needs ``window_end``.
        Intervals end before the year 10000 (the last one that would cross it is not made).
        """
        first = self.first_start(activation)
        if self.end is not None and self.end <= first:
            raise ScheduleError(
                f"endDateTime {format_timestamp(self.end)} is not after the schedule start "
                f"{format_timestamp(first)}")
        if window_end is None and self.end is None and self.occurrences is None:
            raise ScheduleError("an open-ended schedule needs the end of the window to plan")
        k = 0
        if window_start is not None and window_start > first:
            # Jump close to the window instead of walking every interval from the start.
            approx = int((window_start - first).total_seconds() // self.period.max_seconds)
            k = max(0, approx - 1)
        while True:
            if self.occurrences is not None and k >= self.occurrences:
                return
            try:
                start = self.period.after(first, k)
                if self.end is not None and start >= self.end:
                    return
                if window_end is not None and start >= window_end:
                    return
                end = self.period.after(first, k + 1)
            except ScheduleError:
                return  # the calendar ends at 9999-12-31
            if window_start is None or start >= window_start:
                yield start, end
            k += 1


def eligible_at(schedule_type: ScheduleType, start: datetime, end: datetime) -> datetime:
    """When an instance may run: interval start (cron, ondemand) or interval end (timeseries)."""
    return end if schedule_type == "timeseries" else start
