"""Python values -> text, for the encoders.

Only columns whose values are not already ``str``/``None`` pay for a conversion: the encoders
check the set of types of a whole column (C speed) and call :func:`to_text` only when needed.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

#: Types whose ``str()`` is already the text form we want.
PLAIN_TYPES = frozenset({str, int, type(None)})


def to_text(value: Any) -> str | None:
    """The text form of a value as PostgreSQL and MySQL read it back (None stays None)."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, dict | list | tuple | set | frozenset):
        if isinstance(value, set | frozenset):
            value = _ordered(value)
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=json_default)
    if isinstance(value, uuid.UUID | dt.timedelta):
        return str(value)
    return str(value)


def _ordered(values: set[Any] | frozenset[Any]) -> list[Any]:
    """A set as a list, sorted when its members compare (so the text is stable)."""
    try:
        return sorted(values)
    except TypeError:
        return list(values)


def text_columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows -> columns with every value ``str`` or ``None`` (conversion per column if needed)."""
    if not rows:
        return [[] for _ in range(width)]
    columns = [list(c) for c in zip(*rows, strict=True)]
    for i, col in enumerate(columns):
        types = set(map(type, col))
        if not types <= PLAIN_TYPES:
            columns[i] = list(map(to_text, col))
        elif int in types:
            columns[i] = [v if v is None else str(v) for v in col]
    return columns


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback: keeps numbers exact where it can, dates as ISO text."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value() and value.is_finite():
            return int(value)
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, set | frozenset):
        return _ordered(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, uuid.UUID | dt.timedelta):
        return str(value)
    raise TypeError(f"cannot write a value of type {type(value).__name__} as JSON")


def parse_datetime(text: str) -> dt.datetime:
    """A timestamp as databases print it: ISO 8601, ``Z``, or PostgreSQL's ``+00`` offset."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    elif len(s) > 3 and s[-3] in "+-" and s[-2:].isdigit() and ":" not in s[-3:] and (
            len(s) < 6 or s[-6] != "-"):
        s += ":00"  # PostgreSQL's "+00" offset form
    return dt.datetime.fromisoformat(s)
