"""MySQL/MariaDB column types mapped to headrace's logical types, and back."""

from __future__ import annotations

from connectors.base import ColumnType

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
