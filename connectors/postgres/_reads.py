"""What every PostgreSQL read shares, whole or in parts: the schema of a result, the
planner's row estimate, and sending a query's rows as batches from a server-side cursor."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from connectors.base import Progress, RowBatch, RowsOut, Schema
from connectors.sql import ROWS_PER_BATCH, schema_of

from ._types import PG_STRINGIFY, pg_logical


def attributes_schema(attrs: Sequence[Any]) -> Schema:
    schema = schema_of([(a.name, pg_logical(a.type.name)) for a in attrs])
    narrow = {"int2": 16, "float4": 32}
    if not any(a.type.name in narrow for a in attrs):
        return schema
    return Schema(tuple(dataclasses.replace(c, bits=narrow.get(a.type.name))
                        for c, a in zip(schema.columns, attrs, strict=True)))


async def with_numeric_scales(conn: asyncpg.Connection, table: str | None,
                              schema: Schema) -> Schema:
    """``schema`` with the precision and scale of ``table``'s ``numeric(p, s)`` columns (from
    the catalog's type modifiers; a query's result carries none, so it keeps ``numeric``)."""
    if table is None or not any(c.type == "numeric" for c in schema.columns):
        return schema
    rows = await conn.fetch(
        "SELECT attname, atttypmod FROM pg_attribute WHERE attrelid = $1::regclass "
        "AND attnum > 0 AND NOT attisdropped", table)
    mods = {r["attname"]: int(r["atttypmod"]) for r in rows}
    columns = []
    for c in schema.columns:
        mod = mods.get(c.name, -1)
        if c.type == "numeric" and mod >= 4:
            precision, scale = ((mod - 4) >> 16) & 0xFFFF, (mod - 4) & 0xFFFF
            if scale <= precision:  # PostgreSQL 15's negative scales stay unconstrained
                c = dataclasses.replace(c, precision=precision, scale=scale)
        columns.append(c)
    return Schema(tuple(columns))


async def estimated_rows(conn: asyncpg.Connection, query: str, *args: Any) -> int:
    """The planner's row estimate for ``query`` (EXPLAIN runs nothing): the table's
    statistics scaled to its current size."""
    plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {query}", *args)
    parsed = json.loads(plan) if isinstance(plan, str) else plan
    return max(0, int(parsed[0]["Plan"]["Plan Rows"]))


async def send_rows(conn: asyncpg.Connection, query: str, args: Sequence[Any], out: RowsOut,
                    progress: Progress, line: list[int], *, table: str | None = None) -> None:
    """``query``'s rows as batches into ``out``, inside the caller's transaction.
    ``line[0]`` is the next batch's first record number (shared by parts read at once);
    ``table``: the rows are that table's, and their schema keeps its numeric precisions."""
    stmt = await conn.prepare(query)
    attrs = stmt.get_attributes()
    schema = await with_numeric_scales(conn, table, attributes_schema(attrs))
    stringify = [i for i, a in enumerate(attrs) if a.type.name in PG_STRINGIFY]
    cursor = await stmt.cursor(*args)
    while records := await cursor.fetch(ROWS_PER_BATCH):
        rows = [tuple(r) for r in records]
        if stringify:
            rows = [_stringify(r, stringify) for r in rows]
        first = line[0]
        line[0] += len(rows)
        await out.send(RowBatch(schema, rows, first_line=first))
        progress.add(rows=len(rows))


def _stringify(row: tuple[Any, ...], columns: list[int]) -> tuple[Any, ...]:
    values = list(row)
    for i in columns:
        if values[i] is not None:
            values[i] = str(values[i])
    return tuple(values)
