"""Reading a PostgreSQL table or ``selectQuery``: ``COPY ... TO STDOUT`` (bytes lane) or a
server-side cursor (rows lane); a table in ``partitions`` parts at once (:mod:`._partitions`).
"""

from __future__ import annotations

from connectors.base import BytesOut, Progress, RowsOut, Schema, TextFormat, Total
from connectors.errors import ConfigError
from connectors.sql import SqlSource

from ._copy import copy_count, copy_options
from ._endpoint import PostgresEndpoint, connection
from ._errors import map_errors
from ._partitions import read_partitioned
from ._reads import attributes_schema, estimated_rows, send_rows, with_numeric_scales


class PostgresSource(SqlSource[PostgresEndpoint]):
    """Reads a table or a ``selectQuery``."""

    @property
    def _partitioned(self) -> bool:
        """Read as ``partitions`` parts at once (a table only; see :mod:`._partitions`)."""
        return self.endpoint.partitions > 1 and not self.endpoint.select_query and \
            self.where is None

    def can_produce(self, fmt: TextFormat) -> bool:
        return copy_options(fmt, loading=False) is not None

    async def schema(self) -> Schema | None:
        async with connection(self.endpoint, "describe") as conn:
            with map_errors(self.describe, "describe"):
                stmt = await conn.prepare(self._query())
                return await with_numeric_scales(conn, self._table(),
                                                 attributes_schema(stmt.get_attributes()))

    def _table(self) -> str | None:
        """The table whose catalog types (numeric precision) the result keeps, if any."""
        return None if self.endpoint.select_query else self.endpoint.quoted_table()

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
        if self._partitioned:
            await read_partitioned(self.endpoint, self.describe, out, progress,
                                   copy_opts=opts, header=fmt.header)
            return
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
        if self._partitioned:
            await read_partitioned(self.endpoint, self.describe, out, progress,
                                   copy_opts=None, header=False)
            return
        async with connection(self.endpoint, "SELECT") as conn:
            with map_errors(self.describe, "SELECT"):
                async with conn.transaction(readonly=True):
                    await send_rows(conn, self._query(), (), out, progress, [1],
                                    table=self._table())
