"""The function library of the ``#{...}`` language, and the value model it works on.

Values are ``str``, ``int``, ``float``, ``bool``, timezone-aware ``datetime`` (UTC unless moved
with ``inTimeZone``) and ``list`` of those. Every field value arrives as a string in the API, so a
function that expects a number accepts a string that reads as one (``"5"``), and a function that
expects a DateTime accepts ``YYYY-MM-DDTHH:MM:SS`` (also with a space instead of ``T``, with
fractional seconds, with a trailing ``Z`` or a ``+HH:MM`` offset, or a bare date for midnight).

``FUNCTIONS`` maps each case-sensitive name to a :class:`Function`; calling one checks the arity
and the argument types, converts strings, and maps over list arguments (a list argument gives a
list of results; several list arguments give one result per combination, in order).

The AWS function pages list date/time functions only: their "mathematical" and "string"
functions are the operators ``+ - * / ^`` (see :mod:`engine.definition.expressions`). Decisions
where the AWS pages are silent:

* Date arithmetic follows Joda-Time: minutes and hours are exact durations (an hour added across
  a DST change is 3600 seconds); days, weeks, months and years move the wall-clock date in the
  value's zone, and months and years clamp to the end of the month (Jan 31 + 1 month = Feb 28 or
  29). A wall time that falls into a DST gap moves forward by the gap, as in Joda.
* ``midnight`` is the start of the same day (the current guide's wording and example), not the
  next midnight (an older guide's wording).
* ``plusPeriod``/``minusPeriod`` take a period in the schedule syntax (``"1 day"``,
  ``"15 Minutes"``, several parts allowed: ``"1 day 2 hours"``).
* An ``int`` parameter also takes a Double with no fraction (``2.0``) and a String that reads
  as an integer; anything else is refused rather than rounded.
* Error messages name the function and the types involved, never argument values: a value may
  come from a masked (``*``) parameter.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import Enum

from dateutil.relativedelta import relativedelta

from engine.definition.jodatime import format_datetime, zone_for_id
from engine.errors import ExpressionEvalError

__all__ = [
    "FUNCTIONS",
    "Function",
    "Kind",
    "as_datetime",
    "as_number",
    "render",
    "type_name",
]


# --------------------------------------------------------------------------------------------
# Values


def type_name(value: object) -> str:
    """The language's name for the type of ``value`` (used in error messages)."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Double"
    if isinstance(value, str):
        return "String"
    if isinstance(value, datetime):
        return "DateTime"
    if isinstance(value, list | tuple):
        return "List"
    if value is None:
        return "nothing"
    if callable(getattr(value, "lookup", None)):
        return "object reference"
    return type(value).__name__


def render(value: object) -> str:
    """How a value becomes field text.

    DateTime -> ``YYYY-MM-DDTHH:MM:SS`` (wall time in its own zone, no zone, no fraction);
    int -> decimal; float -> like Java's ``Double.toString`` (``4.0``, ``0.5``, ``1.0E10``);
    bool -> ``true``/``false``; list -> a JSON array of the rendered elements.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S") if value.year >= 1000 else (
            f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
            f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
        )
    if isinstance(value, list | tuple):
        return json.dumps([render(v) for v in value])
    raise ExpressionEvalError(f"a value of type {type_name(value)} cannot be written as text")


def java_double(value: float) -> str:
    """``Double.toString``: plain notation for 1e-3 <= |x| < 1e7, else ``d.dddE±n``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    # repr gives the shortest digits that round-trip; lay them out as Java does.
    digits, exponent = _shortest_digits(abs(value))
    if 1e-3 <= abs(value) < 1e7:
        point = exponent + 1  # digits before the decimal point
        if point <= 0:
            text = "0." + "0" * -point + digits
        elif point >= len(digits):
            text = digits + "0" * (point - len(digits)) + ".0"
        else:
            text = digits[:point] + "." + digits[point:]
        return sign + text
    tail = digits[1:] or "0"
    return f"{sign}{digits[0]}.{tail}E{exponent}"


def _shortest_digits(value: float) -> tuple[str, int]:
    """Significant digits of ``repr(value)`` and the decimal exponent of the first one."""
    text = repr(value)
    mantissa, _, exp = text.partition("e")
    exponent = int(exp) if exp else 0
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    leading_zeros = len(whole + frac) - len((whole + frac).lstrip("0"))
    exponent += len(whole) - 1 - leading_zeros
    digits = digits.rstrip("0") or "0"
    return digits, exponent


_INT_TEXT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def as_number(value: object) -> int | float | None:
    """``value`` as a number (a string that reads as one is converted), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _INT_TEXT.fullmatch(text):
            try:
                return int(text)
            except ValueError:  # beyond Python's limit on digits in an int
                return None
        if _FLOAT_TEXT.fullmatch(text):
            number = float(text)
            return number if math.isfinite(number) else None
    return None


_DATETIME_TEXT = re.compile(
    r"\s*([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
    r"(?:[Tt ]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]{1,9}))?)?)?"
    r"\s*(Z|z|UTC|[+-][0-9]{2}(?::?[0-9]{2})?)?\s*",
    re.ASCII,
)


def as_datetime(value: object) -> datetime | None:
    """``value`` as an aware DateTime (strings are parsed, naive means UTC), else None."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    match = _DATETIME_TEXT.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        dt = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                      int(second or 0), micros, tzinfo=UTC)
    except ValueError:
        return None
    if zone and zone not in ("Z", "z", "UTC"):
        offset = zone_for_id(zone if ":" in zone or len(zone) == 3 else zone[:3] + ":" + zone[3:])
        dt = dt.replace(tzinfo=offset).astimezone(UTC)
    return dt


# --------------------------------------------------------------------------------------------
# Signatures


class Kind(Enum):
    """The parameter types of the library."""

    DATETIME = "DateTime"
    INT = "int"
    STRING = "String"


class _ArgumentError(Exception):
    def __init__(self, index: int, problem: str) -> None:
        self.index = index
        self.problem = problem


def _coerce(kind: Kind, value: object, index: int) -> object:
    if kind is Kind.DATETIME:
        dt = as_datetime(value)
        if dt is None:
            if isinstance(value, str):
                raise _ArgumentError(index, "is a String that does not read as a DateTime "
                                            "(expected YYYY-MM-DDTHH:MM:SS)")
            raise _ArgumentError(index, f"is a {type_name(value)}, not a DateTime")
        return dt
    if kind is Kind.INT:
        number = as_number(value)
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        if not isinstance(number, int):
            what = "a String that does not read as an integer" if isinstance(value, str) else (
                f"a {type_name(value)}, not an int")
            raise _ArgumentError(index, f"is {what}")
        return number
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return render(value)
    raise _ArgumentError(index, f"is a {type_name(value)}, not a String")


@dataclass(frozen=True)
class Function:
    """One library function: checks and converts its arguments, maps over list arguments."""

    name: str
    params: tuple[Kind, ...]
    returns: str
    impl: Callable[..., object]
    doc: str = ""

    @property
    def signature(self) -> str:
        return f"{self.returns} {self.name}({', '.join(k.value for k in self.params)})"

    def _takes(self) -> str:
        return f"{self.name}() takes ({', '.join(k.value for k in self.params)})"

    def check_arity(self, count: int) -> None:
        """Raise ExpressionEvalError unless the function takes ``count`` arguments."""
        if count != len(self.params):
            noun = "argument" if count == 1 else "arguments"
            raise ExpressionEvalError(f"{self._takes()}, got {count} {noun}")

    def __call__(self, *args: object) -> object:
        self.check_arity(len(args))
        if any(isinstance(a, list | tuple) for a in args):
            choices = [list(a) if isinstance(a, list | tuple) else [a] for a in args]
            return [self(*combo) for combo in itertools.product(*choices)]
        try:
            converted = [_coerce(k, a, i) for i, (k, a) in enumerate(zip(self.params, args,
                                                                          strict=True))]
        except _ArgumentError as err:
            raise ExpressionEvalError(
                f"{self._takes()}; argument {err.index + 1} {err.problem}") from None
        try:
            return self.impl(*converted)
        except (OverflowError, ValueError) as exc:
            raise ExpressionEvalError(
                f"{self.name}() gives a date outside the supported range (years 1-9999)"
            ) from exc


# --------------------------------------------------------------------------------------------
# Date arithmetic (Joda semantics)


def _localize(wall: datetime, tz: tzinfo | None) -> datetime:
    """Attach ``tz`` to a wall time; a time in a DST gap moves forward by the gap."""
    aware = wall.replace(tzinfo=tz, fold=0)
    if tz is UTC:
        return aware
    return aware.astimezone(UTC).astimezone(tz)


def _wall(dt: datetime) -> datetime:
    return dt.replace(tzinfo=None)


def _plus_exact(dt: datetime, delta: timedelta) -> datetime:
    return (dt.astimezone(UTC) + delta).astimezone(dt.tzinfo)


def _plus_wall(dt: datetime, delta: relativedelta | timedelta) -> datetime:
    return _localize(_wall(dt) + delta, dt.tzinfo)


def _plus_minutes(dt: datetime, n: int) -> datetime:
    return _plus_exact(dt, timedelta(minutes=n))


def _plus_hours(dt: datetime, n: int) -> datetime:
    return _plus_exact(dt, timedelta(hours=n))


def _plus_days(dt: datetime, n: int) -> datetime:
    return _plus_wall(dt, timedelta(days=n))


def _plus_weeks(dt: datetime, n: int) -> datetime:
    return _plus_wall(dt, timedelta(weeks=n))


def _plus_months(dt: datetime, n: int) -> datetime:
    return _plus_wall(dt, relativedelta(months=n))


def _plus_years(dt: datetime, n: int) -> datetime:
    return _plus_wall(dt, relativedelta(years=n))


_PERIOD_PART = re.compile(r"\s*([+-]?[0-9]+)\s*([A-Za-z]+)\s*,?", re.ASCII)
_PERIOD_UNITS: dict[str, Callable[[datetime, int], datetime]] = {
    "minute": _plus_minutes,
    "hour": _plus_hours,
    "day": _plus_days,
    "week": _plus_weeks,
    "month": _plus_months,
    "year": _plus_years,
}


def _parse_period(text: str) -> list[tuple[Callable[[datetime, int], datetime], int]]:
    parts = []
    pos = 0
    while pos < len(text):
        match = _PERIOD_PART.match(text, pos)
        if match is None or match.end() == pos:
            break
        unit = match.group(2).lower()
        unit = unit[:-1] if unit.endswith("s") else unit
        if unit not in _PERIOD_UNITS:
            break
        parts.append((_PERIOD_UNITS[unit], int(match.group(1))))
        pos = match.end()
    if not parts or text[pos:].strip():
        raise ExpressionEvalError(
            "a period reads 'N unit' with unit one of minutes, hours, days, weeks, months, "
            "years (for example '1 day' or '15 minutes')"
        )
    return parts


def _plus_period(dt: datetime, period: str, sign: int = 1) -> datetime:
    for add, amount in _parse_period(period):
        dt = add(dt, sign * amount)
    return dt


def _minus_period(dt: datetime, period: str) -> datetime:
    return _plus_period(dt, period, -1)


def _first_of_month(dt: datetime) -> datetime:
    return _localize(_wall(dt).replace(day=1), dt.tzinfo)


def _midnight(dt: datetime) -> datetime:
    return _localize(_wall(dt).replace(hour=0, minute=0, second=0, microsecond=0), dt.tzinfo)


def _sunday(dt: datetime) -> datetime:
    return _plus_wall(dt, timedelta(days=-((dt.weekday() + 1) % 7)))


def _make_date(year: int, month: int, day: int) -> datetime:
    return _make_date_time(year, month, day, 0, 0)


def _make_date_time(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    try:
        return datetime(year, month, day, hour, minute, tzinfo=UTC)
    except ValueError:
        raise ExpressionEvalError(
            f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d} is not a valid date and "
            "time (month 1-12, day within the month, hour 0-23, minute 0-59)"
        ) from None


def _in_time_zone(dt: datetime, zone: str) -> datetime:
    return dt.astimezone(zone_for_id(zone))


def _format(dt: datetime, pattern: str) -> str:
    return format_datetime(dt, pattern)


_D, _I, _S = Kind.DATETIME, Kind.INT, Kind.STRING

_TABLE: list[Function] = [
    Function("day", (_D,), "int", lambda dt: dt.day, "day of the month"),
    Function("dayOfYear", (_D,), "int", lambda dt: dt.timetuple().tm_yday, "day of the year"),
    Function("hour", (_D,), "int", lambda dt: dt.hour, "hour of the day, 0-23"),
    Function("minute", (_D,), "int", lambda dt: dt.minute, "minute of the hour"),
    Function("month", (_D,), "int", lambda dt: dt.month, "month of the year, 1-12"),
    Function("year", (_D,), "int", lambda dt: dt.year, "the year"),
    Function("firstOfMonth", (_D,), "DateTime", _first_of_month,
             "first day of the month, same time of day"),
    Function("format", (_D, _S), "String", _format, "format with a Joda-Time pattern"),
    Function("makeDate", (_I, _I, _I), "DateTime", _make_date, "UTC midnight of a date"),
    Function("makeDateTime", (_I, _I, _I, _I, _I), "DateTime", _make_date_time,
             "UTC date and time"),
    Function("midnight", (_D,), "DateTime", _midnight, "start of the same day"),
    Function("sunday", (_D,), "DateTime", _sunday,
             "the previous Sunday (the same day if a Sunday), same time of day"),
    Function("yesterday", (_D,), "DateTime", lambda dt: _plus_days(dt, -1), "minus one day"),
    Function("inTimeZone", (_D, _S), "DateTime", _in_time_zone,
             "the same instant in another zone (Joda zone id)"),
    Function("plusPeriod", (_D, _S), "DateTime", _plus_period, "add a period such as '1 day'"),
    Function("minusPeriod", (_D, _S), "DateTime", _minus_period,
             "subtract a period such as '1 day'"),
]
for _unit, _add in (("Minutes", _plus_minutes), ("Hours", _plus_hours), ("Days", _plus_days),
                    ("Weeks", _plus_weeks), ("Months", _plus_months), ("Years", _plus_years)):
    _TABLE.append(Function(f"plus{_unit}", (_D, _I), "DateTime", _add, f"add {_unit.lower()}"))
    _TABLE.append(Function(
        f"minus{_unit}", (_D, _I), "DateTime",
        lambda dt, n, _add=_add: _add(dt, -n), f"subtract {_unit.lower()}",
    ))

FUNCTIONS: dict[str, Function] = {f.name: f for f in _TABLE}
