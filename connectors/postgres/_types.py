"""PostgreSQL column types mapped to headrace's logical types, and back.

Also the value coercers of the rows lane: a row that came from text (a CSV file, a
``scriptArgument``) holds strings, but asyncpg's binary protocol wants the Python type of the
target column. A coercer converts only values whose type does not already fit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import Column, ColumnType
from connectors.sql import parse_bool, parse_datetime

# --- PostgreSQL -------------------------------------------------------------------------------

_PG_TO_LOGICAL: dict[str, ColumnType] = {
    "int2": "integer", "int4": "integer", "int8": "bigint", "oid": "bigint",
    "numeric": "numeric", "float4": "double", "float8": "double", "money": "numeric",
    "bool": "boolean", "timestamptz": "timestamptz", "timestamp": "timestamp", "date": "date",
    "json": "json", "jsonb": "json", "bytea": "binary",
}

_LOGICAL_TO_PG: dict[str, str] = {
    "text": "text", "integer": "integer", "bigint": "bigint", "numeric": "numeric",
    "double": "double precision", "boolean": "boolean", "timestamptz": "timestamptz",
    "timestamp": "timestamp", "date": "date", "json": "jsonb", "binary": "bytea",
}

#: PostgreSQL types whose asyncpg values are not plain RowBatch values: sent on as text.
PG_STRINGIFY = frozenset({"uuid", "inet", "cidr", "macaddr", "macaddr8", "xml", "money",
                          "tsvector", "tsquery", "bit", "varbit", "point", "interval"})


def pg_logical(type_name: str) -> ColumnType:
    """The logical type of a PostgreSQL type name (``int4``, ``timestamptz``...)."""
    return _PG_TO_LOGICAL.get(type_name, "text")


def pg_ddl_type(kind: ColumnType) -> str:
    return _LOGICAL_TO_PG[kind]


def pg_column_ddl_type(col: Column) -> str:
    """The DDL type of ``col``, keeping a declared precision and scale and narrow widths."""
    if col.type == "numeric" and col.precision is not None and 0 < col.precision <= 1000:
        return f"numeric({col.precision}, {col.scale or 0})"
    if col.type == "integer" and col.bits is not None and col.bits <= 16:
        return "smallint"
    if col.type == "double" and col.bits == 32:
        return "real"
    return _LOGICAL_TO_PG[col.type]


# --- value coercion ---------------------------------------------------------------------------

def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, str):
        return int(v.strip())
    if isinstance(v, (Decimal, float)):
        if v != v.to_integral_value() if isinstance(v, Decimal) else not float(v).is_integer():
            raise ValueError(f"not an integer: {v!r}")
        return int(v)
    raise ValueError(f"not an integer: {v!r}")


def _to_decimal(v: Any) -> Decimal:
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return Decimal(str(v))
        return Decimal(repr(v))
    try:
        return Decimal(v.strip() if isinstance(v, str) else v)
    except (InvalidOperation, TypeError):
        raise ValueError(f"not a number: {v!r}") from None


def _to_float(v: Any) -> float:
    return float(v.strip() if isinstance(v, str) else v)


def _to_bool(v: Any) -> bool:
    if isinstance(v, str):
        return parse_bool(v)
    if isinstance(v, (int, Decimal)):
        return bool(v)
    raise ValueError(f"not a boolean: {v!r}")


def _to_timestamptz(v: Any) -> datetime:
    if isinstance(v, str):
        v = parse_datetime(v)
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=UTC)
    raise ValueError(f"not a timestamp: {v!r}")


def _to_timestamp(v: Any) -> datetime:
    if isinstance(v, str):
        v = parse_datetime(v)
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None) if v.tzinfo else v
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day)
    raise ValueError(f"not a timestamp: {v!r}")


def _to_date(v: Any) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, str):
        return date.fromisoformat(v.strip())
    raise ValueError(f"not a date: {v!r}")


def _to_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, datetime | date):
        return v.isoformat(sep=" ") if isinstance(v, datetime) else v.isoformat()
    return str(v)


def _to_json(v: Any) -> str:
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False, default=str)


def _to_bytes(v: Any) -> bytes:
    if isinstance(v, str):
        if v.startswith("\\x"):
            return bytes.fromhex(v[2:])
        return v.encode("utf-8")
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    raise ValueError(f"not binary data: {v!r}")


#: Postgres type name -> (types that already fit, converter)
_PG_COERCE: dict[str, tuple[tuple[type, ...], Callable[[Any], Any]]] = {
    "int2": ((int,), _to_int), "int4": ((int,), _to_int), "int8": ((int,), _to_int),
    "numeric": ((Decimal, int), _to_decimal),
    "float4": ((float,), _to_float), "float8": ((float,), _to_float),
    "bool": ((bool,), _to_bool),
    "timestamptz": ((datetime,), _to_timestamptz), "timestamp": ((datetime,), _to_timestamp),
    "date": ((date,), _to_date),
    "json": ((str,), _to_json), "jsonb": ((str,), _to_json),
    "bytea": ((bytes,), _to_bytes),
    "text": ((str,), _to_text), "varchar": ((str,), _to_text), "bpchar": ((str,), _to_text),
    "name": ((str,), _to_text),
}


def pg_coercer(type_name: str) -> Callable[[Any], Any] | None:
    """A function making a value fit a PostgreSQL column of ``type_name`` (None: pass as is)."""
    spec = _PG_COERCE.get(type_name)
    if spec is None:
        return None
    fits, convert = spec
    exact_bool = type_name == "bool"

    def coerce(v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, fits) and (exact_bool or not isinstance(v, bool) or fits == (bool,)):
            if type_name == "timestamptz" and isinstance(v, datetime) and v.tzinfo is None:
                return v.replace(tzinfo=UTC)
            if type_name == "timestamp" and isinstance(v, datetime) and v.tzinfo is not None:
                return _to_timestamp(v)
            if type_name in ("date",) and isinstance(v, datetime):
                return v.date()
            return v
        return convert(v)

    return coerce


_NONE = type(None)
_PG_FITS: dict[str, frozenset[type]] = {
    **{t: frozenset({int, _NONE}) for t in ("int2", "int4", "int8")},
    "numeric": frozenset({Decimal, int, _NONE}),
    "float4": frozenset({float, _NONE}), "float8": frozenset({float, _NONE}),
    "bool": frozenset({bool, _NONE}),
    **{t: frozenset({str, _NONE}) for t in ("text", "varchar", "bpchar", "name", "json", "jsonb")},
    "bytea": frozenset({bytes, _NONE}),
    "date": frozenset({date, _NONE}),
}


def pg_column_fits(type_name: str, values: list[Any]) -> bool:
    """True when every one of ``values`` can go to a ``type_name`` column unconverted.

    Looks at the set of types (cheap) rather than calling a converter per value; timestamps
    also need the right awareness (naive for ``timestamp``, aware for ``timestamptz``).
    """
    kinds = set(map(type, values))
    if type_name in ("timestamptz", "timestamp"):
        if not kinds <= {datetime, _NONE}:
            return False
        naive = type_name == "timestamp"
        return all((v.tzinfo is None) == naive for v in values if v is not None)
    return kinds <= _PG_FITS.get(type_name, frozenset({_NONE}))
