"""Reading a MySQL table or ``selectQuery`` with an unbuffered (streaming) cursor: lines
built by the server (bytes lane) or row batches (rows lane).
"""

from __future__ import annotations

from typing import Any

from asyncmy.cursors import SSCursor

from connectors.base import (
    BytesOut,
    ColumnType,
    Progress,
    RowBatch,
    RowsOut,
    Schema,
    TextFormat,
    Total,
)
from connectors.errors import ConfigError
from connectors.sql import SqlSource
from connectors.tracing import traced_db

from ._columns import (
    columns_schema,
    estimated_rows,
    query_columns,
    table_columns,
    table_description,
)
from ._endpoint import MySqlEndpoint, reader
from ._fetch import fetch_gated, fix_rows, row_fixes
from ._lines import Kind, header_line, line_select, supports
from ._partitions import read_partitioned


class MySqlSource(SqlSource[MySqlEndpoint]):
    """Reads a table or a ``selectQuery`` with an unbuffered (streaming) cursor."""

    def can_produce(self, fmt: TextFormat) -> bool:
        return supports(fmt)

    @property
    def _partitioned(self) -> bool:
        """Read as ``partitions`` key ranges at once (a table only; see :mod:`._partitions`)."""
        return self.endpoint.partitions > 1 and not self.endpoint.select_query

    async def _read_partitioned(self, fmt: TextFormat | None, out: BytesOut | RowsOut,
                                progress: Progress) -> None:
        async with reader(self.endpoint, "describe") as conn:
            columns = await self._columns(conn)
        if fmt is not None and fmt.header:
            head = header_line([n for n, _, _ in columns], fmt)
            await out.send(head)  # type: ignore[arg-type]
            progress.add(nbytes=len(head))
        await read_partitioned(self.endpoint, self.describe, out, progress, columns=columns,
                               schema=columns_schema(columns), fmt=fmt)

    async def _columns(self, conn: Any) -> list[tuple[str, Kind, ColumnType]]:
        if self.endpoint.select_query:
            return await query_columns(conn, self.endpoint.select_query)
        return await table_columns(conn, self.endpoint)

    async def primary_key(self) -> tuple[str, ...]:
        """The table's primary key columns, in key order (empty: none, or a query)."""
        if self.endpoint.select_query:
            return ()
        db, name = self.endpoint.table_parts()
        async with reader(self.endpoint, "describe") as conn, conn.cursor() as cur:
            await cur.execute(
                "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE "
                "TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s AND "
                "CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION", (db, name))
            return tuple(r[0] for r in await cur.fetchall())

    async def _described(self, conn: Any
                         ) -> tuple[list[tuple[str, Kind, ColumnType]], Schema]:
        """The columns and the schema, from one look at the catalog."""
        if self.endpoint.select_query:
            columns = await query_columns(conn, self.endpoint.select_query)
            return columns, columns_schema(columns)
        return await table_description(conn, self.endpoint)

    async def schema(self) -> Schema | None:
        async with reader(self.endpoint, "describe") as conn:
            return (await self._described(conn))[1]

    async def total(self) -> Total | None:
        """A table's estimated rows (a query's: unknown)."""
        if self.endpoint.select_query:
            return None
        async with reader(self.endpoint, "estimate") as conn:
            rows = await estimated_rows(conn, self.endpoint)
        return None if rows is None else Total(rows=rows, estimated=True)

    @traced_db("mysql", "SELECT")
    async def produce_bytes(self, fmt: TextFormat, out: BytesOut, progress: Progress) -> None:
        if not supports(fmt):
            raise ConfigError(f"the server cannot render this format: {fmt}",
                              connector=self.describe)
        if self._partitioned:
            await self._read_partitioned(fmt, out, progress)
            return
        limit = max(1, self.endpoint.chunk_size)
        async with reader(self.endpoint, "SELECT") as conn:
            columns = await self._columns(conn)
            sql = line_select([(n, k) for n, k, _ in columns], fmt, self._query())
            pending: list[bytes] = [header_line([n for n, _, _ in columns], fmt)] \
                if fmt.header else []
            size = sum(map(len, pending))
            # No ``async with`` on the cursor: closing an unbuffered cursor drains the rest of
            # the result, which on failure or cancellation is neither wanted nor safe.
            cur = conn.cursor(SSCursor)
            await cur.execute(sql)
            # Each row is one server-built line: they are gathered as they are and joined
            # once per chunk, which ends after the fetch that reaches ``limit``, so every byte
            # is copied once here (cutting every chunk at exactly ``limit`` cost two more
            # copies: a join per fetch, then slices). Only a chunk size below one fetch's
            # bytes still cuts, so the read-ahead stays bounded by the chunk size.
            async for rows in fetch_gated(conn, cur):
                progress.add(rows=len(rows))
                lines = [r[0] for r in rows]
                pending += lines
                size += sum(map(len, lines))
                if size >= limit:
                    data = b"".join(pending)
                    pending.clear()
                    size = 0
                    step = len(data) if len(data) < 2 * limit else limit
                    for start in range(0, len(data), step):
                        chunk = data if step == len(data) else data[start:start + step]
                        await out.send(chunk)
                        progress.add(nbytes=len(chunk))
        if pending:
            chunk = b"".join(pending)
            await out.send(chunk)
            progress.add(nbytes=len(chunk))

    @traced_db("mysql", "SELECT")
    async def produce_rows(self, out: RowsOut, progress: Progress) -> None:
        if self._partitioned:
            await self._read_partitioned(None, out, progress)
            return
        async with reader(self.endpoint, "SELECT") as conn:
            columns, schema = await self._described(conn)
            fixes = row_fixes(columns)
            number = 1
            cur = conn.cursor(SSCursor)  # see produce_bytes: never drained on failure
            await cur.execute(self._query())
            async for rows in fetch_gated(conn, cur):
                batch = [tuple(r) for r in rows] if not fixes else fix_rows(rows, fixes)
                await out.send(RowBatch(schema, batch, first_line=number))
                number += len(batch)
                progress.add(rows=len(batch))


