"""What the columns of a MySQL table or query are: names, how the server renders each
(``_lines`` kinds) and their logical types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.base import Column, ColumnType, Schema
from connectors.errors import NotFoundError

from ._endpoint import MySqlEndpoint
from ._lines import Kind
from ._types import mysql_column, mysql_logical

# asyncmy/pymysql FIELD_TYPE codes -> rendering kind and logical type
_FIELD_KIND: dict[int, tuple[Kind, ColumnType]] = {
    0: ("number", "numeric"), 246: ("number", "numeric"),
    1: ("number", "integer"), 2: ("number", "integer"), 3: ("number", "integer"),
    9: ("number", "integer"), 13: ("number", "integer"), 8: ("number", "bigint"),
    4: ("number", "double"), 5: ("number", "double"),
    7: ("temporal", "timestamptz"), 12: ("temporal", "timestamp"),
    10: ("temporal", "date"), 14: ("temporal", "date"), 11: ("temporal", "text"),
    16: ("bit", "bigint"), 245: ("text", "json"),
}
_BINARY_CHARSET = 63


def _kind_of(data_type: str, column_type: str) -> tuple[Kind, ColumnType]:
    logical = mysql_logical(data_type, column_type)
    dt = data_type.lower()
    if dt == "bit":
        return "bit", logical
    if logical in ("integer", "bigint", "numeric", "double", "boolean"):
        return "number", logical
    if logical in ("timestamptz", "timestamp", "date") or dt == "time":
        return "temporal", logical
    if logical == "binary":
        return "binary", logical
    return "text", logical


async def _column_rows(conn: Any, ep: MySqlEndpoint) -> list[Sequence[Any]]:
    """The table's rows of information_schema.COLUMNS: name, type, column type, numeric
    precision and scale (one query serves both the kinds and the typed schema)."""
    db, name = ep.table_parts()
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) "
            "AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION", (db, name))
        rows = await cur.fetchall()
    if not rows:
        raise NotFoundError(f"table {ep.table} does not exist", connector=ep.describe(),
                            operation="describe")
    return list(rows)


async def table_columns(conn: Any, ep: MySqlEndpoint) -> list[tuple[str, Kind, ColumnType]]:
    return [(r[0], *_kind_of(r[1], r[2])) for r in await _column_rows(conn, ep)]


async def table_description(conn: Any, ep: MySqlEndpoint
                            ) -> tuple[list[tuple[str, Kind, ColumnType]], Schema]:
    """A table's columns (name, kind, logical type) and its typed schema, in one query."""
    rows = await _column_rows(conn, ep)
    return ([(r[0], *_kind_of(r[1], r[2])) for r in rows],
            Schema(tuple(mysql_column(r[0], r[1], r[2], r[3], r[4]) for r in rows)))


async def query_columns(conn: Any, query: str) -> list[tuple[str, Kind, ColumnType]]:
    async with conn.cursor() as cur:
        await cur.execute(f"SELECT * FROM ({query}) AS q LIMIT 0")
        description = cur.description or ()
    out: list[tuple[str, Kind, ColumnType]] = []
    for d in description:
        name, code, _display, internal = d[0], d[1], d[2], d[3]
        kind, logical = _FIELD_KIND.get(code, ("text", "text"))
        if (code == 1 and internal == 1) or (code == 16 and internal == 1):
            logical = "boolean"
        elif code in (249, 250, 251, 252, 253, 254) and _is_binary(d):
            kind, logical = "binary", "binary"
        out.append((name, kind, logical))
    return out


def _is_binary(description: Sequence[Any]) -> bool:
    """True for a BLOB/BINARY column (charset 63) in a cursor description."""
    charset = getattr(description, "charsetnr", None)
    return charset == _BINARY_CHARSET


def columns_schema(columns: Sequence[tuple[str, Kind, ColumnType]]) -> Schema:
    return Schema(tuple(Column(n, t) for n, _, t in columns))


async def has_table(conn: Any, db: str | None, name: str) -> bool:
    async with conn.cursor() as cur:
        await cur.execute("SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                          "COALESCE(%s, DATABASE()) AND TABLE_NAME = %s", (db, name))
        return await cur.fetchone() is not None


async def estimated_rows(conn: Any, ep: MySqlEndpoint) -> int | None:
    """The table's row count as the server keeps it (``TABLE_ROWS``: exact for MyISAM, the
    statistics' estimate for InnoDB), None when unknown."""
    db, name = ep.table_parts()
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT TABLE_ROWS FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s", (db, name))
        row = await cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])
