"""Values as SQL connectors read them from text: booleans, timestamps (PostgreSQL's ``+00``
offsets too), the truth of a query's first column; a schema from (name, type) pairs."""

from __future__ import annotations

from typing import Any

from connectors.base import Column, ColumnType, Schema


def schema_of(pairs: list[tuple[str, ColumnType]]) -> Schema:
    return Schema(tuple(Column(name, kind) for name, kind in pairs))


_TRUE = frozenset({"t", "true", "1", "y", "yes", "on"})
_FALSE = frozenset({"f", "false", "0", "n", "no", "off"})


def parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def truthy(value: Any) -> bool:
    """Truth of a query's first column: NULL, 0, false and '', 'f', 'false', '0' are false."""
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "f", "false", "n", "no", "off")
    if isinstance(value, bytes):
        return truthy(value.decode("utf-8", "replace"))
    return bool(value)
