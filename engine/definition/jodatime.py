"""Joda-Time compatible date formatting and time-zone ids.

AWS Data Pipeline formats dates with Joda-Time's ``DateTimeFormat`` patterns, whose letters do
not mean what Python's ``strftime`` or Java's ``SimpleDateFormat`` letters mean (``YYYY`` is the
year of era, not the week year; ``xxxx`` is the ISO week year). This module reproduces Joda's
printing rules in the English locale:

* A run of one letter is one field; the run length is the minimum number of digits (numbers
  are zero-padded, never truncated) or selects the text form: 3 letters or fewer give the short
  text (``EEE`` = ``Tue``), 4 or more the full text (``EEEE`` = ``Tuesday``). ``M`` is numeric
  below 3 letters. ``yy``/``YY``/``xx`` print the last two digits of the year.
* ``S`` prints exactly as many fraction-of-second digits as letters, from milliseconds (Joda's
  precision), so ``SSSSSS`` ends in three zeros.
* ``z`` is the short zone name, ``zzzz`` the long one; ``Z`` is ``+0000``, ``ZZ`` ``+00:00`` and
  ``ZZZ`` the zone id.
* Text in single quotes is literal and ``''`` is one quote, inside or outside quotes; an
  unterminated quote runs to the end of the pattern (as in Joda). Any other character that is
  not an ASCII letter is literal. An ASCII letter that is not a pattern letter is an error.

Decisions where Joda depends on the JDK's locale data, which Python does not have:

* Short zone names come from the tz database (``PST``/``PDT``, ``CET``/``CEST``, ``UTC``).
  Where the tz database has only a numeric abbreviation (``-03``), the offset is printed as
  ``-03:00``, which is what Joda prints for a zone it has no name for.
* Long zone names (``zzzz``) come from a table of the common zones, worded as Java 8's English
  locale data words them (``Pacific Standard Time``, ``Central European Summer Time``,
  ``Coordinated Universal Time``); any other zone prints its offset, as Joda does without a name.
* ``ZZZ`` prints the id the zone was created with; UTC and its aliases print ``UTC``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from engine.errors import ExpressionEvalError

__all__ = ["format_datetime", "zone_for_id", "zone_id"]

_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# Ids Joda resolves to its single UTC zone.
_UTC_IDS = frozenset({
    "UTC", "GMT", "UCT", "Z", "Zulu", "Universal", "Greenwich", "GMT0", "GMT+0", "GMT-0",
    "Etc/UTC", "Etc/GMT", "Etc/UCT", "Etc/Zulu", "Etc/Universal", "Etc/Greenwich",
    "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0",
})

_OFFSET_ID = re.compile(r"([+-])([0-9]{1,2})(?::?([0-9]{2}))?", re.ASCII)

# Long names, as Java 8's English locale data gives them, by tz-database abbreviation.
_LONG_NAMES = {
    "UTC": "Coordinated Universal Time",
    "GMT": "Greenwich Mean Time",
    "BST": "British Summer Time",
    "WET": "Western European Time",
    "WEST": "Western European Summer Time",
    "CET": "Central European Time",
    "CEST": "Central European Summer Time",
    "MET": "Middle Europe Time",
    "MEST": "Middle Europe Summer Time",
    "EET": "Eastern European Time",
    "EEST": "Eastern European Summer Time",
    "MSK": "Moscow Standard Time",
    "EST": "Eastern Standard Time",
    "EDT": "Eastern Daylight Time",
    "CST": "Central Standard Time",
    "CDT": "Central Daylight Time",
    "MST": "Mountain Standard Time",
    "MDT": "Mountain Daylight Time",
    "PST": "Pacific Standard Time",
    "PDT": "Pacific Daylight Time",
    "AKST": "Alaska Standard Time",
    "AKDT": "Alaska Daylight Time",
    "HST": "Hawaii Standard Time",
    "AST": "Atlantic Standard Time",
    "ADT": "Atlantic Daylight Time",
    "NST": "Newfoundland Standard Time",
    "NDT": "Newfoundland Daylight Time",
    "JST": "Japan Standard Time",
    "KST": "Korea Standard Time",
    "HKT": "Hong Kong Time",
    "SAST": "South Africa Standard Time",
    "NZST": "New Zealand Standard Time",
    "NZDT": "New Zealand Daylight Time",
    "AEST": "Australian Eastern Standard Time",
    "AEDT": "Australian Eastern Daylight Time",
    "ACST": "Australian Central Standard Time",
    "ACDT": "Australian Central Daylight Time",
    "AWST": "Australian Western Standard Time",
}
# Abbreviations the tz database shares between unrelated zones: decided by zone id.
_LONG_NAMES_BY_ZONE = {
    ("Asia/Shanghai", "CST"): "China Standard Time",
    ("Asia/Chongqing", "CST"): "China Standard Time",
    ("Asia/Harbin", "CST"): "China Standard Time",
    ("PRC", "CST"): "China Standard Time",
    ("Asia/Taipei", "CST"): "China Standard Time",
    ("Asia/Macau", "CST"): "China Standard Time",
    ("Asia/Kolkata", "IST"): "India Standard Time",
    ("Asia/Calcutta", "IST"): "India Standard Time",
    ("Europe/Dublin", "IST"): "Irish Summer Time",
    ("Eire", "IST"): "Irish Summer Time",
    ("Asia/Jerusalem", "IST"): "Israel Standard Time",
    ("Asia/Tel_Aviv", "IST"): "Israel Standard Time",
    ("Israel", "IST"): "Israel Standard Time",
    ("Asia/Jerusalem", "IDT"): "Israel Daylight Time",
    ("Asia/Tel_Aviv", "IDT"): "Israel Daylight Time",
    ("Israel", "IDT"): "Israel Daylight Time",
    ("America/Havana", "CST"): "Cuba Standard Time",
    ("America/Havana", "CDT"): "Cuba Daylight Time",
    ("Cuba", "CST"): "Cuba Standard Time",
    ("Cuba", "CDT"): "Cuba Daylight Time",
}


def zone_for_id(zone: str) -> tzinfo:
    """The zone for a Joda zone id: ``UTC``, a tz database id, or an offset like ``-08:00``."""
    if zone in _UTC_IDS:
        return UTC
    match = _OFFSET_ID.fullmatch(zone)
    if match is not None:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if hours > 23 or minutes > 59:
            raise ExpressionEvalError(f"time zone offset {zone!r} is out of range")
        delta = timedelta(hours=hours, minutes=minutes)
        if not delta:
            return UTC
        delta = -delta if sign == "-" else delta
        return timezone(delta, _offset_text(delta, colon=True))
    try:
        return ZoneInfo(zone)
    except Exception as exc:  # ValueError, ZoneInfoNotFoundError, OSError for odd keys
        raise ExpressionEvalError(
            f"unknown time zone {zone!r} (use a tz database id such as 'America/Los_Angeles',"
            " 'UTC' or an offset such as '-08:00')"
        ) from exc


def zone_id(tz: tzinfo | None, when: datetime | None = None) -> str:
    """The Joda id of a zone: ``UTC``, the tz database key, or ``+HH:MM`` for a fixed offset."""
    if tz is None or tz is UTC:
        return "UTC"
    if isinstance(tz, ZoneInfo):
        return "UTC" if tz.key in _UTC_IDS else tz.key
    offset = tz.utcoffset(when)
    if offset is None or not offset:
        return "UTC"
    return _offset_text(offset, colon=True)


def format_datetime(dt: datetime, pattern: str) -> str:
    """Format ``dt`` (in its own zone; naive means UTC) with a Joda ``DateTimeFormat`` pattern.

    Raises ExpressionEvalError for a letter that is not a Joda pattern letter.
    """
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return "".join(printer(dt) for printer in _compile(pattern))


_Printer = Callable[[datetime], str]


@lru_cache(maxsize=512)
def _compile(pattern: str) -> tuple[_Printer, ...]:
    printers: list[_Printer] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if _is_letter(c):
            j = i
            while j < n and pattern[j] == c:
                j += 1
            printers.append(_field_printer(c, j - i))
            i = j
            continue
        # A literal run: non-letters and quoted sections, up to the next unquoted letter.
        buf: list[str] = []
        in_quote = False
        while i < n:
            c = pattern[i]
            if c == "'":
                if i + 1 < n and pattern[i + 1] == "'":
                    buf.append("'")
                    i += 1
                else:
                    in_quote = not in_quote
            elif not in_quote and _is_letter(c):
                break
            else:
                buf.append(c)
            i += 1
        printers.append(_literal("".join(buf)))
    return tuple(printers)


def _literal(text: str) -> _Printer:
    return lambda _dt: text


def _is_letter(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z")


def _field_printer(letter: str, count: int) -> _Printer:
    def number(get: Callable[[datetime], int]) -> _Printer:
        return lambda dt: _padded(get(dt), count)

    if letter == "G":
        return lambda dt: "AD"  # datetime cannot hold years before 1
    if letter == "C":
        return number(lambda dt: dt.year // 100)
    if letter in "yY":
        if count == 2:
            return lambda dt: _padded(dt.year % 100, 2)
        return number(lambda dt: dt.year)
    if letter == "x":
        if count == 2:
            return lambda dt: _padded(dt.isocalendar()[0] % 100, 2)
        return number(lambda dt: dt.isocalendar()[0])
    if letter == "w":
        return number(lambda dt: dt.isocalendar()[1])
    if letter == "e":
        return number(lambda dt: dt.isoweekday())
    if letter == "E":
        if count >= 4:
            return lambda dt: _WEEKDAYS[dt.weekday()]
        return lambda dt: _WEEKDAYS[dt.weekday()][:3]
    if letter == "D":
        return number(lambda dt: dt.timetuple().tm_yday)
    if letter == "M":
        if count >= 4:
            return lambda dt: _MONTHS[dt.month - 1]
        if count == 3:
            return lambda dt: _MONTHS[dt.month - 1][:3]
        return number(lambda dt: dt.month)
    if letter == "d":
        return number(lambda dt: dt.day)
    if letter == "a":
        return lambda dt: "AM" if dt.hour < 12 else "PM"
    if letter == "K":
        return number(lambda dt: dt.hour % 12)
    if letter == "h":
        return number(lambda dt: dt.hour % 12 or 12)
    if letter == "H":
        return number(lambda dt: dt.hour)
    if letter == "k":
        return number(lambda dt: dt.hour or 24)
    if letter == "m":
        return number(lambda dt: dt.minute)
    if letter == "s":
        return number(lambda dt: dt.second)
    if letter == "S":
        return lambda dt: _fraction(dt, count)
    if letter == "z":
        if count >= 4:
            return _long_zone_name
        return _short_zone_name
    if letter == "Z":
        if count == 1:
            return lambda dt: _offset_text(dt.utcoffset() or timedelta(0), colon=False)
        if count == 2:
            return lambda dt: _offset_text(dt.utcoffset() or timedelta(0), colon=True)
        return lambda dt: zone_id(dt.tzinfo, dt)
    raise ExpressionEvalError(
        f"{letter!r} is not a date format pattern letter (Joda-Time letters are"
        " G C Y y x w e E D M d a K h H k m s S z Z; quote literal text with '')"
    )


def _padded(value: int, width: int) -> str:
    if value < 0:
        return "-" + str(-value).zfill(width)
    return str(value).zfill(width)


def _fraction(dt: datetime, digits: int) -> str:
    millis = dt.microsecond // 1000
    return str(millis * 10**digits // 1000).zfill(digits)


def _offset_text(offset: timedelta, *, colon: bool) -> str:
    total = int(offset.total_seconds()) // 60
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total), 60)
    return f"{sign}{hours:02d}:{minutes:02d}" if colon else f"{sign}{hours:02d}{minutes:02d}"


def _short_zone_name(dt: datetime) -> str:
    tz = dt.tzinfo
    if zone_id(tz, dt) == "UTC":
        return "UTC"
    if not isinstance(tz, ZoneInfo):
        return _offset_text(dt.utcoffset() or timedelta(0), colon=True)
    abbreviation = dt.tzname() or ""
    if not abbreviation or abbreviation[0] in "+-" or abbreviation[0].isdigit():
        return _offset_text(dt.utcoffset() or timedelta(0), colon=True)
    return abbreviation


def _long_zone_name(dt: datetime) -> str:
    key = zone_id(dt.tzinfo, dt)
    if key == "UTC":
        return _LONG_NAMES["UTC"]
    abbreviation = dt.tzname() or ""
    name = _LONG_NAMES_BY_ZONE.get((key, abbreviation)) or _LONG_NAMES.get(abbreviation)
    if name is None:
        return _offset_text(dt.utcoffset() or timedelta(0), colon=True)
    return name
