"""Reading a PostgreSQL table or ``selectQuery``: ``COPY ... TO STDOUT`` (bytes lane) or a
server-side cursor (rows lane).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from connectors.base import (
    BytesOut,
    Progress,
    RowBatch,
    RowsOut,
    Schema,
    TextFormat,
)
from connectors.errors import ConfigError
from connectors.sql import ROWS_PER_BATCH, SqlSource, schema_of

from ._copy import copy_count, copy_options
from ._endpoint import PostgresEndpoint, connection
from ._errors import map_errors
from ._types import PG_STRINGIFY, pg_logical


def attributes_schema(attrs: Sequence[Any]) -> Schema:
    schema = schema_of([(a.name, pg_logical(a.type.name)) for a in attrs])
    narrow = {"int2": 16, "float4": 32}
    if not any(a.type.name in narrow for a in attrs):
        return schema
    return Schema(tuple(dataclasses.replace(c, bits=narrow.get(a.type.name))
                        for c, a in zip(schema.columns, attrs, strict=True)))


async def with_numeric_scales(conn: Any, endpoint: PostgresEndpoint, schema: Schema) -> Schema:
    """``schema`` with the precision and scale of a table's ``numeric(p, s)`` columns (from
    the catalog's type modifiers; a query's result carries none, so it keeps ``numeric``)."""
    if endpoint.select_query or not any(c.type == "numeric" for c in schema.columns):
        return schema
    rows = await conn.fetch(
        "SELECT attname, atttypmod FROM pg_attribute WHERE attrelid = $1::regclass "
        "AND attnum > 0 AND NOT attisdropped", endpoint.quoted_table())
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


class PostgresSource(SqlSource[PostgresEndpoint]):
    """Reads a table or a ``selectQuery``."""

    def can_produce(self, fmt: TextFormat) -> bool:
        return copy_options(fmt, loading=False) is not None

    async def schema(self) -> Schema | None:
        async with connection(self.endpoint, "describe") as conn:
            with map_errors(self.describe, "describe"):
                stmt = await conn.prepare(self._query())
                return await with_numeric_scales(conn, self.endpoint,
                                                 attributes_schema(stmt.get_attributes()))

    async def primary_key(self) -> tuple[str, ...]:
        """The table's primary key columns, in key order (empty: none, or a query)."""
        if not self.endpoint.table:
            return ()
        async with connection(self.endpoint, "describe") as conn:
            with map_errors(self.describe, "describe"):
                rows = await conn.fetch(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON "
                    "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                    "WHERE i.indrelid = $1::regclass AND i.indisprimary "
                    "ORDER BY array_position(i.indkey, a.attnum)", self.endpoint.quoted_table())
        return tuple(r["attname"] for r in rows)

    async def produce_bytes(self, fmt: TextFormat, out: BytesOut, progress: Progress) -> None:
        opts = copy_options(fmt, loading=False)
        if opts is None:
            raise ConfigError(f"COPY cannot write this format: {fmt}", connector=self.describe)
        limit = max(1, self.endpoint.chunk_size)
        buf: list[bytes] = []  # COPY's pieces (one per socket read), joined once per chunk
        size = 0

        async def take(data: bytes) -> None:
            nonlocal size
            buf.append(data)
            size += len(data)
            if size >= limit:
                chunk = b"".join(buf)  # bytes even when asyncpg hands a bytearray
                buf.clear()
                size = 0
                await out.send(chunk)
                progress.add(nbytes=len(chunk))

        async with connection(self.endpoint, "COPY TO") as conn:
            with map_errors(self.describe, "COPY TO"):
                if self.endpoint.select_query or self.where is not None:
                    status = await conn.copy_from_query(self._query(), output=take, **opts)
                else:
                    schema, name = self.endpoint.table_parts()
                    status = await conn.copy_from_table(name, schema_name=schema,
                                                        output=take, **opts)
        if buf:
            chunk = b"".join(buf)
            await out.send(chunk)
            progress.add(nbytes=len(chunk))
        progress.add(rows=copy_count(status))

    async def produce_rows(self, out: RowsOut, progress: Progress) -> None:
        async with connection(self.endpoint, "SELECT") as conn:
            with map_errors(self.describe, "SELECT"):
                async with conn.transaction(readonly=True):
                    stmt = await conn.prepare(self._query())
                    attrs = stmt.get_attributes()
                    schema = await with_numeric_scales(conn, self.endpoint,
                                                       attributes_schema(attrs))
                    stringify = [i for i, a in enumerate(attrs) if a.type.name in PG_STRINGIFY]
                    cursor = await stmt.cursor()
                    first = 1
                    while records := await cursor.fetch(ROWS_PER_BATCH):
                        rows = [tuple(r) for r in records]
                        if stringify:
                            rows = [_stringify(r, stringify) for r in rows]
                        await out.send(RowBatch(schema, rows, first_line=first))
                        first += len(rows)
                        progress.add(rows=len(rows))


def _stringify(row: tuple[Any, ...], columns: list[int]) -> tuple[Any, ...]:
    values = list(row)
    for i in columns:
        if values[i] is not None:
            values[i] = str(values[i])
    return tuple(values)
