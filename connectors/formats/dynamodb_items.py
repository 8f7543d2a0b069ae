"""DynamoDB items <-> Python rows.

Items here are always in DynamoDB's *wire* JSON form, as the service sends and takes them and as
its export to S3 writes them: ``{"id": {"N": "7"}, "blob": {"B": "AAEC"}}`` (numbers as strings,
binary as base64 text). Keeping the wire form means a DynamoDB -> DynamoDB-JSON-lines copy never
turns a value into a Python object and back.

Python -> attribute value (:func:`to_attribute`)::

    str -> S        int, Decimal, float -> N    bool -> BOOL      None -> NULL
    bytes -> B      dict -> M                    list/tuple -> L
    datetime, date, time -> S (ISO-8601)         set of str/numbers/bytes -> SS/NS/BS

Rows map column names to attribute names. A ``None`` in a row *column* means "no value" and the
attribute is left out of the item (DynamoDB has no columns; writing ``NULL`` for every empty SQL
column would bloat items). Inside a whole item given as a dict (the :data:`ITEM_COLUMN` shape),
``None`` stays ``NULL`` so items survive a round trip.

Attribute value -> Python (:func:`from_attribute`): N becomes ``int`` when integral, else
``Decimal`` (no precision is lost); B becomes ``bytes``; sets become Python ``set``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import Column, Schema

#: A row of this one-column schema carries a whole item as a dict (the rows lane's shape when no
#: columns were declared).
ITEM_COLUMN = Column("item", "json")
ITEM_SCHEMA = Schema((ITEM_COLUMN,))

Item = dict[str, dict[str, Any]]

_SCALAR_TYPES = frozenset({"S", "N", "B", "BOOL", "NULL"})
_ALL_TYPES = _SCALAR_TYPES | {"L", "M", "SS", "NS", "BS"}
_INTEGER = re.compile(r"[+-]?\d+")


class ConversionError(ValueError):
    """A value that cannot become an attribute value (or a column value), with where it was."""

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)

    def at(self, outer: str) -> ConversionError:
        """The same error with ``outer`` prefixed to its path (attribute, then nested keys)."""
        if not self.path:
            path = outer
        elif self.path.startswith("["):
            path = outer + self.path
        else:
            path = f"{outer}.{self.path}"
        return ConversionError(self.reason, path)


# -- Python -> wire ---------------------------------------------------------------------------

def _number_text(value: int | float | Decimal) -> str:
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConversionError(f"DynamoDB numbers must be finite, got {value!r}")
        return repr(value)
    if not value.is_finite():
        raise ConversionError(f"DynamoDB numbers must be finite, got {value}")
    return str(value)


def _set_attribute(values: set[Any] | frozenset[Any]) -> dict[str, Any]:
    if not values:
        raise ConversionError("DynamoDB has no empty sets")
    if all(isinstance(v, str) for v in values):
        return {"SS": sorted(values)}
    if all(isinstance(v, bytes | bytearray) for v in values):
        return {"BS": sorted(base64.b64encode(v).decode("ascii") for v in values)}
    if all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in values):
        return {"NS": sorted(_number_text(v) for v in values)}
    raise ConversionError("a set must hold only strings, only numbers or only bytes")


def to_attribute(value: Any) -> dict[str, Any]:
    """The wire attribute value for a Python value (see the module docstring for the table)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float | Decimal):
        return {"N": _number_text(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"B": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime | date | time):
        return {"S": value.isoformat()}
    if isinstance(value, Mapping):
        return {"M": dict_to_item(value, keep_none=True)}
    if isinstance(value, list | tuple):
        out = []
        for i, v in enumerate(value):
            try:
                out.append(to_attribute(v))
            except ConversionError as exc:
                raise exc.at(f"[{i}]") from None
        return {"L": out}
    if isinstance(value, set | frozenset):
        return _set_attribute(value)
    raise ConversionError(f"cannot store a {type(value).__name__} in DynamoDB")


def dict_to_item(values: Mapping[str, Any], *, keep_none: bool = True) -> Item:
    """An item from a dict of Python values; ``None`` becomes NULL unless ``keep_none`` is off."""
    item: Item = {}
    for name, value in values.items():
        if not isinstance(name, str):
            raise ConversionError(f"attribute names must be strings, got {name!r}")
        if value is None and not keep_none:
            continue
        try:
            item[name] = to_attribute(value)
        except ConversionError as exc:
            raise exc.at(name) from None
    return item


def row_to_item(names: Sequence[str], row: Sequence[Any]) -> Item:
    """An item from one row: column ``names[i]`` -> attribute; ``None`` columns are left out.

    A row of :data:`ITEM_SCHEMA` (one ``item`` json column holding a dict) is the whole item.
    """
    if len(row) != len(names):
        raise ConversionError(f"row has {len(row)} values for {len(names)} columns")
    if len(names) == 1 and names[0] == ITEM_COLUMN.name and isinstance(row[0], Mapping):
        return dict_to_item(row[0], keep_none=True)
    return dict_to_item(dict(zip(names, row, strict=True)), keep_none=False)


# -- wire -> Python ---------------------------------------------------------------------------

def parse_number(text: str) -> int | Decimal:
    """A DynamoDB number string as ``int`` when integral, else an exact ``Decimal``."""
    if _INTEGER.fullmatch(text):
        return int(text)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ConversionError(f"not a number: {text!r}") from None
    if not number.is_finite():
        raise ConversionError(f"not a finite number: {text!r}")
    return number


def _b64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ConversionError(f"binary value must be base64 text, got {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ConversionError(f"invalid base64 in a binary value: {text[:40]!r}") from None


def attribute_type(av: Any) -> tuple[str, Any]:
    """The ``(type, payload)`` of a wire attribute value, checking its shape."""
    if not isinstance(av, Mapping) or len(av) != 1:
        raise ConversionError(f"an attribute value is one {{type: value}} pair, got {av!r:.60}")
    ((kind, payload),) = av.items()
    if kind not in _ALL_TYPES:
        raise ConversionError(f"unknown attribute type {kind!r}")
    return kind, payload


def from_attribute(av: Mapping[str, Any]) -> Any:
    """The Python value of a wire attribute value (see the module docstring)."""
    kind, payload = attribute_type(av)
    if kind == "S":
        if not isinstance(payload, str):
            raise ConversionError("an S value must be a string")
        return payload
    if kind == "N":
        if not isinstance(payload, str):
            raise ConversionError("an N value must be a string")
        return parse_number(payload)
    if kind == "B":
        return _b64(payload)
    if kind == "BOOL":
        if not isinstance(payload, bool):
            raise ConversionError("a BOOL value must be true or false")
        return payload
    if kind == "NULL":
        return None
    if kind == "M":
        if not isinstance(payload, Mapping):
            raise ConversionError("an M value must be an object")
        return item_to_dict(payload)
    if not isinstance(payload, list):
        raise ConversionError(f"an {kind} value must be a list")
    if kind == "L":
        out = []
        for i, v in enumerate(payload):
            try:
                out.append(from_attribute(v))
            except ConversionError as exc:
                raise exc.at(f"[{i}]") from None
        return out
    if kind == "SS":
        return set(payload)
    if kind == "NS":
        return {parse_number(v) for v in payload}
    return {_b64(v) for v in payload}


def item_to_dict(item: Mapping[str, Any]) -> dict[str, Any]:
    """A whole item as a dict of Python values (NULL -> None)."""
    out: dict[str, Any] = {}
    for name, av in item.items():
        try:
            out[name] = from_attribute(av)
        except ConversionError as exc:
            raise exc.at(name) from None
    return out


def _plain_json(value: Any) -> Any:
    """``value`` with sets as sorted lists, bytes as base64 and numbers kept exact."""
    if isinstance(value, dict):
        return {k: _plain_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_json(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(_plain_json(v) for v in value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def _to_column(av: Mapping[str, Any], column: Column) -> Any:
    kind, payload = attribute_type(av)
    if kind == "NULL":
        return None
    ctype = column.type
    if ctype == "json":
        return from_attribute(av)
    if ctype == "text":
        if kind in ("S", "N"):
            return payload
        if kind == "BOOL":
            return "true" if payload else "false"
        if kind == "B":
            return payload
        return json.dumps(_plain_json(from_attribute(av)), default=str, ensure_ascii=False)
    if ctype in ("integer", "bigint", "numeric", "double"):
        if kind not in ("N", "S"):
            raise ConversionError(f"expected a number for a {ctype} column, got {kind}")
        number = parse_number(payload.strip())
        if ctype == "double":
            return float(number)
        if ctype == "numeric":
            return Decimal(number)
        if isinstance(number, Decimal):
            if number != number.to_integral_value():
                raise ConversionError(f"expected an integer, got {payload}")
            return int(number)
        return number
    if ctype == "boolean":
        if kind == "BOOL":
            return payload
        if kind == "S" and payload.lower() in ("true", "false"):
            return payload.lower() == "true"
        if kind == "N" and payload in ("0", "1"):
            return payload == "1"
        raise ConversionError(f"expected a boolean, got {kind} {payload!r:.40}")
    if ctype == "binary":
        if kind == "B":
            return _b64(payload)
        raise ConversionError(f"expected binary, got {kind}")
    if ctype in ("timestamptz", "timestamp", "date"):
        return _to_time(kind, payload, ctype)
    raise ConversionError(f"unsupported column type {ctype!r}")


def _to_time(kind: str, payload: Any, ctype: str) -> datetime | date:
    if kind == "N":  # epoch seconds, as DynamoDB TTL attributes hold them
        moment = datetime.fromtimestamp(float(parse_number(payload)), UTC)
    elif kind == "S":
        try:
            moment = datetime.fromisoformat(payload)
        except ValueError:
            raise ConversionError(f"not an ISO-8601 time: {payload!r:.40}") from None
    else:
        raise ConversionError(f"expected a time (S or N), got {kind}")
    if ctype == "date":
        return moment.date()
    if ctype == "timestamp":
        return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def item_to_row(item: Mapping[str, Any], columns: Sequence[Column]) -> tuple[Any, ...]:
    """A row of ``columns`` from an item: missing or NULL attributes give ``None``."""
    values: list[Any] = []
    for column in columns:
        av = item.get(column.name)
        if av is None:
            values.append(None)
            continue
        try:
            values.append(_to_column(av, column))
        except ConversionError as exc:
            raise exc.at(column.name) from None
    return tuple(values)


def item_key(item: Mapping[str, Any], key_names: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """A hashable key of ``item`` for the table's key attributes (to spot duplicate keys)."""
    key = []
    for name in key_names:
        av = item.get(name)
        if av is None:
            raise ConversionError("the item has no value for this key attribute", name)
        kind, payload = attribute_type(av)
        if kind not in ("S", "N", "B"):
            raise ConversionError(f"a key attribute must be S, N or B, got {kind}", name)
        if kind in ("S", "B") and payload == "":
            raise ConversionError("a key attribute cannot be empty (DynamoDB refuses an empty "
                                  "string or binary key)", name)
        if kind == "N":
            payload = _canonical_number(payload)  # "1", "1.0" and "1E0" are the same key
        key.append((kind, payload))
    return tuple(key)


#: DynamoDB's limit on one item (attribute names and values, UTF-8 / raw bytes).
MAX_ITEM_BYTES = 400 * 1024


def oversized_attribute(item: Mapping[str, Any]) -> tuple[int, str] | None:
    """(bytes, largest attribute) when ``item`` is surely over DynamoDB's 400 KB, else None.

    The count is a lower bound of DynamoDB's own (names and S/B payloads exactly, every other
    value as one byte, no overhead), so an item refused here is one the service would refuse
    too, and it is refused naming its row and the attribute that made it large.
    """
    total, largest, largest_size = 0, "", -1
    for name, av in item.items():
        size = len(name.encode("utf-8")) + _value_bytes(av)
        total += size
        if size > largest_size:
            largest, largest_size = name, size
    return (total, largest) if total > MAX_ITEM_BYTES else None


def _value_bytes(av: Any) -> int:
    if not isinstance(av, Mapping) or len(av) != 1:
        return 1
    ((kind, payload),) = av.items()
    if kind == "S" and isinstance(payload, str):
        return len(payload.encode("utf-8", "surrogatepass"))
    if kind == "B" and isinstance(payload, str):
        return len(payload) * 3 // 4 - payload[-2:].count("=")
    if kind == "SS" and isinstance(payload, list):
        return sum(len(str(v).encode("utf-8", "surrogatepass")) for v in payload)
    if kind == "L" and isinstance(payload, list):
        return sum(_value_bytes(v) for v in payload)
    if kind == "M" and isinstance(payload, Mapping):
        return sum(len(str(k).encode("utf-8")) + _value_bytes(v) for k, v in payload.items())
    return 1


def coerce_key(item: Item, key_types: Mapping[str, str]) -> Item:
    """``item`` with key attributes turned into the table's key types where that is lossless.

    Rows from untyped text (a CSV without declared columns) carry every value as S; a table
    keyed by a number needs N. Only S <-> N is converted, and S -> N only for number text.
    """
    changed: Item | None = None
    for name, wanted in key_types.items():
        av = item.get(name)
        if not isinstance(av, Mapping) or len(av) != 1 or wanted in av:
            continue
        ((kind, payload),) = av.items()
        if wanted == "N" and kind == "S" and isinstance(payload, str):
            try:
                parse_number(payload.strip())
            except ConversionError:
                continue
            replacement = {"N": payload.strip()}
        elif wanted == "S" and kind == "N":
            replacement = {"S": payload}
        else:
            continue
        changed = changed if changed is not None else dict(item)
        changed[name] = replacement
    return changed if changed is not None else item


def _canonical_number(text: str) -> str:
    number = parse_number(text)
    if isinstance(number, Decimal):
        number = number.normalize()
        if number == number.to_integral_value():
            return str(int(number))
    return str(number)


def _number_json(text: str) -> str:
    return str(parse_number(text))  # int or Decimal text: always a valid JSON number


def plain_json(av: Mapping[str, Any]) -> str:
    """An attribute value as ordinary JSON text: numbers exact (never via float), binary as
    base64 text, sets as sorted arrays, NULL as null."""
    kind, payload = attribute_type(av)
    if kind in ("S", "B"):
        return json.dumps(payload, ensure_ascii=False)
    if kind == "N":
        return _number_json(payload)
    if kind == "BOOL":
        return "true" if payload else "false"
    if kind == "NULL":
        return "null"
    if kind == "M":
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{plain_json(v)}"
                              for k, v in payload.items()) + "}"
    if kind == "L":
        return "[" + ",".join(plain_json(v) for v in payload) + "]"
    if kind == "NS":
        return "[" + ",".join(_number_json(n) for n in sorted(payload, key=parse_number)) + "]"
    return json.dumps(sorted(payload), ensure_ascii=False)


def item_plain_json(item: Mapping[str, Any], names: Sequence[str] = ()) -> str:
    """One JSON-lines object for an item: every attribute, or ``names`` in order (absent ones
    as null), values as :func:`plain_json` writes them."""
    if names:
        pairs = ((n, plain_json(item[n]) if n in item else "null") for n in names)
    else:
        pairs = ((n, plain_json(av)) for n, av in item.items())
    return "{" + ",".join(f"{json.dumps(n, ensure_ascii=False)}:{text}"
                          for n, text in pairs) + "}"


def item_json(item: Mapping[str, Any]) -> str:
    """One line of DynamoDB export JSON (``{"Item":{...}}``) for a wire item, no newline."""
    return json.dumps({"Item": item}, separators=(",", ":"), ensure_ascii=False)
