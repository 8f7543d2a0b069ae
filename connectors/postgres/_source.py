"""Reading a PostgreSQL table or ``selectQuery``: ``COPY ... TO STDOUT`` (bytes lane) or a
server-side cursor (rows lane).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from connectors.base import (
    BytesOut,
    Progress,
    RowBatch,
    RowsOut,
    Schema,
    TextFormat,
    Total,
)
from connectors.errors import ConfigError
from connectors.sql import ROWS_PER_BATCH, SqlSource, schema_of

from ._copy import copy_count, copy_options
from ._endpoint import PostgresEndpoint, connection
from ._errors import map_errors
from ._types import PG_STRINGIFY, pg_logical


def attributes_schema(attrs: Sequence[Any]) -> Schema:
    return schema_of([(a.name, pg_logical(a.type.name)) for a in attrs])


class PostgresSource(SqlSource[PostgresEndpoint]):
    """Reads a table or a ``selectQuery``."""

    def can_produce(self, fmt: TextFormat) -> bool:
        return copy_options(fmt, loading=False) is not None

    async def schema(self) -> Schema | None:
        async with connection(self.endpoint, "describe") as conn:
            with map_errors(self.describe, "describe"):
                stmt = await conn.prepare(self._query())
                return attributes_schema(stmt.get_attributes())

    async def total(self) -> Total | None:
        """The rows the planner expects the read to return (``EXPLAIN``: the table's
        statistics scaled to its current size): an estimate."""
        async with connection(self.endpoint, "estimate") as conn:
            with map_errors(self.describe, "estimate"):
                return Total(rows=await estimated_rows(conn, self._query()), estimated=True)

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
                if self.endpoint.select_query:
                    status = await conn.copy_from_query(self.endpoint.select_query,
                                                        output=take, **opts)
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
                    schema = attributes_schema(attrs)
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


async def estimated_rows(conn: Any, query: str) -> int:
    """The planner's row estimate for ``query`` (EXPLAIN runs nothing)."""
    plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {query}")
    parsed = json.loads(plan) if isinstance(plan, str) else plan
    return max(0, int(parsed[0]["Plan"]["Plan Rows"]))


def _stringify(row: tuple[Any, ...], columns: list[int]) -> tuple[Any, ...]:
    values = list(row)
    for i in columns:
        if values[i] is not None:
            values[i] = str(values[i])
    return tuple(values)
