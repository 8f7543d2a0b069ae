"""MySQL/MariaDB column types mapped to headrace's logical types, and back."""

from __future__ import annotations

from connectors.base import Column, ColumnType

_LOGICAL_TO_MYSQL: dict[str, str] = {
    "text": "LONGTEXT", "integer": "INT", "bigint": "BIGINT", "numeric": "DECIMAL(38,10)",
    "double": "DOUBLE", "boolean": "BOOLEAN", "timestamptz": "DATETIME(6)",
    "timestamp": "DATETIME(6)", "date": "DATE", "json": "JSON", "binary": "LONGBLOB",
}


def mysql_ddl_type(kind: ColumnType) -> str:
    return _LOGICAL_TO_MYSQL[kind]


def mysql_logical(data_type: str, column_type: str) -> ColumnType:
    """Logical type from information_schema's ``DATA_TYPE`` and ``COLUMN_TYPE``."""
    dt = data_type.lower()
    if dt == "tinyint" and column_type.lower().startswith("tinyint(1)"):
        return "boolean"
    if dt == "bit" and column_type.lower() in ("bit(1)", "bit"):
        return "boolean"
    if dt in ("tinyint", "smallint", "mediumint", "int", "integer", "year"):
        return "bigint" if "unsigned" in column_type.lower() and dt == "int" else "integer"
    if dt in ("bigint", "bit"):
        return "bigint"
    if dt in ("decimal", "numeric"):
        return "numeric"
    if dt in ("float", "double", "real"):
        return "double"
    if dt == "timestamp":
        return "timestamptz"
    if dt == "datetime":
        return "timestamp"
    if dt == "date":
        return "date"
    if dt == "json":
        return "json"
    if dt in ("binary", "varbinary", "blob", "tinyblob", "mediumblob", "longblob"):
        return "binary"
    return "text"


_INT_BITS = {"tinyint": 8, "smallint": 16}


def mysql_column(name: str, data_type: str, column_type: str, precision: int | None,
                 scale: int | None) -> Column:
    """A column with what a columnar format keeps: DECIMAL's precision and scale, the width
    of TINYINT and SMALLINT (one wider when unsigned), FLOAT as 32 bits; BIGINT UNSIGNED,
    which no signed 64-bit integer holds, is ``numeric(20, 0)``."""
    kind = mysql_logical(data_type, column_type)
    dt, unsigned = data_type.lower(), "unsigned" in column_type.lower()
    if dt in ("decimal", "numeric") and precision is not None:
        return Column(name, kind, precision=int(precision), scale=int(scale or 0))
    if dt == "bigint" and unsigned:
        return Column(name, "numeric", precision=20, scale=0)
    if kind == "integer" and dt in _INT_BITS:
        bits = _INT_BITS[dt] * (2 if unsigned else 1)
        return Column(name, kind, bits=bits if bits <= 16 else None)
    if kind == "double" and dt == "float":
        return Column(name, kind, bits=32)
    return Column(name, kind)


def mysql_column_ddl_type(col: Column) -> str:
    """The DDL type of ``col``, keeping a declared precision and scale and narrow widths."""
    if col.type == "numeric" and col.precision is not None and 0 < col.precision <= 65:
        return f"DECIMAL({col.precision},{min(col.scale or 0, 30, col.precision)})"
    if col.type == "integer" and col.bits is not None and col.bits <= 16:
        return "TINYINT" if col.bits <= 8 else "SMALLINT"
    if col.type == "double" and col.bits == 32:
        return "FLOAT"
    return _LOGICAL_TO_MYSQL[col.type]
