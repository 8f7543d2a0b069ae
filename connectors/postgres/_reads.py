"""What every PostgreSQL read shares, whole or in parts: the schema of a result, the
planner's row estimate, and sending a query's rows as batches from a server-side cursor."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from connectors.base import Progress, RowBatch, RowsOut, Schema
from connectors.sql import ROWS_PER_BATCH, schema_of

from ._types import PG_STRINGIFY, pg_logical


def attributes_schema(attrs: Sequence[Any]) -> Schema:
    return schema_of([(a.name, pg_logical(a.type.name)) for a in attrs])


async def estimated_rows(conn: asyncpg.Connection, query: str, *args: Any) -> int:
    """The planner's row estimate for ``query`` (EXPLAIN runs nothing): the table's
    statistics scaled to its current size."""
    plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {query}", *args)
    parsed = json.loads(plan) if isinstance(plan, str) else plan
    return max(0, int(parsed[0]["Plan"]["Plan Rows"]))


async def send_rows(conn: asyncpg.Connection, query: str, args: Sequence[Any], out: RowsOut,
                    progress: Progress, line: list[int]) -> None:
    """``query``'s rows as batches into ``out``, inside the caller's transaction.
    ``line[0]`` is the next batch's first record number (shared by parts read at once)."""
    stmt = await conn.prepare(query)
    attrs = stmt.get_attributes()
    schema = attributes_schema(attrs)
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
