"""DynamoDB JSON lines (``{"Item": {"id": {"N": "1"}, ...}}`` per line, as DynamoDB's export
writes) and the typed-attribute-value conversions the DynamoDB connector shares.

Reading: ``N`` becomes ``int`` when integral, else ``Decimal``; ``B`` is base64 -> ``bytes``;
sets become sorted lists; ``M``/``L`` become plain dicts/lists. A line may also hold the bare
attribute map without the ``Item`` wrapper. Writing: NULL columns are left out (DynamoDB items
are sparse), so a missing attribute and NULL read back the same.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from decimal import Decimal
from typing import Any

from .jsonl import JsonLinesDecoder, JsonLinesEncoder
from .values import to_text


def number(text: str) -> int | Decimal:
    """A DynamoDB ``N`` string as ``int`` when integral, else ``Decimal``."""
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


def from_attribute_value(av: dict[str, Any]) -> Any:
    """One typed attribute value (``{"S": "x"}``) -> a Python value."""
    if len(av) != 1:
        raise ValueError(f"an attribute value has exactly one type key, got {sorted(av)}")
    ((tag, v),) = av.items()
    if tag == "S":
        return v
    if tag == "N":
        return number(v)
    if tag == "BOOL":
        return bool(v)
    if tag == "NULL":
        return None
    if tag == "B":
        return base64.b64decode(v) if isinstance(v, str) else bytes(v)
    if tag == "M":
        return {k: from_attribute_value(x) for k, x in v.items()}
    if tag == "L":
        return [from_attribute_value(x) for x in v]
    if tag == "SS":
        return sorted(v)
    if tag == "NS":
        return sorted(number(x) for x in v)
    if tag == "BS":
        return sorted(base64.b64decode(x) if isinstance(x, str) else bytes(x) for x in v)
    raise ValueError(f"unknown attribute type {tag!r}")


def to_attribute_value(value: Any) -> dict[str, Any]:
    """A Python value -> a typed attribute value in DynamoDB's JSON form."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"DynamoDB numbers cannot be {value}")
        return {"N": repr(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"B": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {"M": {str(k): to_attribute_value(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute_value(v) for v in value]}
    if isinstance(value, set | frozenset):
        items = list(value)
        if all(isinstance(v, str) for v in items):
            return {"SS": sorted(items)}
        if all(isinstance(v, int | Decimal | float) and not isinstance(v, bool) for v in items):
            return {"NS": [str(v) for v in items]}
        return {"L": [to_attribute_value(v) for v in items]}
    if isinstance(value, dt.date | dt.time | dt.datetime):
        return {"S": value.isoformat()}
    return {"S": to_text(value)}


def item_from_row(names: tuple[str, ...], row: tuple[Any, ...]) -> dict[str, Any]:
    """A row -> a DynamoDB item (typed), leaving NULL columns out."""
    return {k: to_attribute_value(v) for k, v in zip(names, row, strict=True) if v is not None}


def row_from_item(names: tuple[str, ...], item: dict[str, Any]) -> tuple[Any, ...]:
    """A DynamoDB item (typed) -> a row in ``names`` order; a missing attribute is NULL."""
    return tuple(from_attribute_value(item[k]) if k in item else None for k in names)


class DynamoDbJsonDecoder(JsonLinesDecoder):
    def _values(self, obj: dict[str, Any]) -> dict[str, Any]:
        item = obj.get("Item", obj) if len(obj) == 1 else obj
        if not isinstance(item, dict):
            raise ValueError("'Item' is not an object")
        return {k: from_attribute_value(v) for k, v in item.items()}


class DynamoDbJsonEncoder(JsonLinesEncoder):
    def _record(self, names: tuple[str, ...], row: tuple[Any, ...]) -> Any:
        return {"Item": item_from_row(names, row)}
