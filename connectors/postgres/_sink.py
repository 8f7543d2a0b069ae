"""Loading into a PostgreSQL table (COPY) or through an ``insertQuery``, in one transaction;
idempotent under a checkpoint key (see :mod:`._resumable`); by N COPY streams into a staging
table swapped in at once with ``partitions`` (see :mod:`._parallel_load`).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from connectors.base import BytesIn, Progress, RowBatch, RowsIn, Schema, TextFormat
from connectors.errors import ConfigError
from connectors.formats import RowChecksum
from connectors.sql import SqlSink, aligned_schema, next_batch, quote_ident, target_columns

from ._copy import (
    copy_count,
    copy_options,
    copy_rows_in,
    copy_stream_in,
    insert_batches,
    table_columns,
)
from ._endpoint import PostgresEndpoint, connection, transaction
from ._errors import map_errors
from ._parallel_load import load_in_parallel
from ._reads import attributes_schema
from ._resumable import (
    checkpoint,
    load_resumable,
    mark_loaded,
    read_watermark,
    save_watermark,
)
from ._types import pg_column_ddl_type


class PostgresSink(SqlSink[PostgresEndpoint]):
    """Loads into a table (COPY) or through an ``insertQuery``, in one transaction."""

    def can_consume(self, fmt: TextFormat) -> bool:
        if self.endpoint.insert_query:  # needs rows
            return False
        return copy_options(fmt, loading=True) is not None

    async def schema(self) -> Schema | None:
        """The table's columns; an insertQuery's, in its placeholders' order."""
        ep, inserted = self.written_table()
        if ep is None:
            return None
        async with connection(self.endpoint, "describe") as conn:
            with map_errors(self.describe, "describe"):
                if not await has_table(conn, ep.quoted_table()):
                    return None
                stmt = await conn.prepare(f"SELECT * FROM {ep.quoted_table()}")
                table = attributes_schema(stmt.get_attributes())
                return aligned_schema(inserted, table) if inserted else table

    async def consume_bytes(self, fmt: TextFormat, inp: BytesIn, progress: Progress) -> None:
        opts = copy_options(fmt, loading=True)
        if opts is None or self.endpoint.insert_query:
            raise ConfigError(f"COPY cannot read this format: {fmt}", connector=self.describe)
        hint = self.source_schema or (Schema(fmt.columns) if fmt.columns else None)
        key = self.endpoint.checkpoint_key
        if self.endpoint.partitions > 1 and not key:
            async def prepare(conn: asyncpg.Connection) -> None:
                await self._prepare_table(conn, hint)

            progress.add(rows=await load_in_parallel(self.endpoint, self.describe, fmt, opts,
                                                     inp, progress, prepare))
            return
        async with connection(self.endpoint, "COPY FROM") as conn:
            with map_errors(self.describe, "COPY FROM"):
                if key and await _finished(conn, key):
                    async for _ in inp:  # loaded by an earlier run: take the input, load none
                        pass
                    return
                async with transaction(conn):
                    await self._prepare_table(conn, hint)
                    schema, name = self.endpoint.table_parts()
                    columns = [n for n, _ in await table_columns(conn, name, schema)]
                    status = await copy_stream_in(conn, name, schema, inp, opts, progress,
                                                  fmt=fmt, columns=columns,
                                                  where=self.describe)
                    await self._verify_load(conn, None)
                    if key:  # in the same transaction as the rows
                        await mark_loaded(conn, key=key, target=self.endpoint.quoted_table(),
                                          rows=copy_count(status))
        progress.add(rows=copy_count(status))

    async def consume_rows(self, inp: RowsIn, progress: Progress) -> None:
        first = await next_batch(inp)
        hint = self.source_schema or (first.schema if first else None)
        key = self.endpoint.checkpoint_key if not self.endpoint.insert_query else None
        if key and self.verify_check is None and self.watermark is None \
                and not self.merge_keys:
            await self._consume_resumable(first, inp, progress, hint)
            return
        # A verified or incremental load goes in one transaction, so it is verified as a
        # whole and its watermark commits with it (under a checkpoint key too: marked loaded
        # in that transaction, as a COPY of bytes is).
        async with connection(self.endpoint, "load") as conn:
            with map_errors(self.describe, "load"):
                if key and await _finished(conn, key):
                    async for _ in inp:  # loaded by an earlier run: take the input, load none
                        pass
                    return
                async with transaction(conn):
                    await self._prepare_table(conn, hint)
                    if first is None:
                        await self._verify_load(conn, None)
                        await self._save_watermark(conn)
                        return
                    status = "COPY 0"
                    if self.merge_keys:
                        status = await self._merge_rows(conn, first, inp, progress)
                    elif self.endpoint.insert_query:
                        await insert_batches(conn, self.endpoint.insert_query, first, inp,
                                              progress)
                    else:
                        schema, name = self.endpoint.table_parts()
                        status = await copy_rows_in(conn, name, schema, first, inp, progress)
                    await self._verify_load(conn, first.schema.names)
                    if key:
                        await mark_loaded(conn, key=key, target=self.endpoint.quoted_table(),
                                          rows=copy_count(status))
                    await self._save_watermark(conn)

    async def _consume_resumable(self, first: RowBatch | None, inp: RowsIn, progress: Progress,
                                 hint: Schema | None) -> None:
        ep = self.endpoint
        async with connection(ep, "resumable load") as conn:
            with map_errors(self.describe, "resumable load"):
                async with transaction(conn):
                    await self._prepare_table(conn, hint)
                schema, name = ep.table_parts()
                empty = RowBatch(hint or Schema(()), [], first_line=1)
                await load_resumable(conn, key=ep.checkpoint_key or "", target=name,
                                     schema=schema, first=first or empty, inp=inp,
                                     progress=progress, batch_rows=max(1, ep.batch_rows),
                                     copy_rows=copy_rows_in)

    async def stored_watermark(self, key: str) -> str | None:
        async with connection(self.endpoint, "read watermark") as conn:
            with map_errors(self.describe, "read watermark"):
                return await read_watermark(conn, key)

    async def _save_watermark(self, conn: asyncpg.Connection) -> None:
        if self.watermark is not None:
            key, state = self.watermark
            await save_watermark(conn, key=key, target=self.endpoint.quoted_table(),
                                 state=state())

    async def _merge_rows(self, conn: asyncpg.Connection, first: RowBatch, inp: RowsIn,
                          progress: Progress) -> str:
        """Upsert by ``merge_keys``: the rows go to a temp table, then update the target's
        rows with their key and insert the others (no unique index needed on the target)."""
        ep = self.endpoint
        table = ep.quoted_table()
        schema, name = ep.table_parts()
        target = [n for n, _ in await table_columns(conn, name, schema)]
        columns = target_columns(first.schema.names, target)
        missing = [k for k in self.merge_keys if k not in columns]
        if missing:
            raise ConfigError(f"merge key columns {missing} are not loaded into {ep.table}",
                              connector=self.describe)
        stage = "headrace_merge_stage"
        await conn.execute(f"CREATE TEMP TABLE {stage} (LIKE {table} INCLUDING DEFAULTS) "
                           "ON COMMIT DROP")
        status = await copy_rows_in(conn, stage, None, first, inp, progress)
        q = [quote_ident(c, "postgresql") for c in columns]
        on = " AND ".join(f"t.{quote_ident(k, 'postgresql')} = s.{quote_ident(k, 'postgresql')}"
                          for k in self.merge_keys)
        sets = ", ".join(f"{c} = s.{c}" for c, n in zip(q, columns, strict=True)
                         if n not in self.merge_keys)
        if sets:
            await conn.execute(f"UPDATE {table} AS t SET {sets} FROM {stage} AS s WHERE {on}")
        await conn.execute(
            f"INSERT INTO {table} ({', '.join(q)}) SELECT {', '.join('s.' + c for c in q)} "
            f"FROM {stage} AS s WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE {on})")
        return status

    async def _verify_load(self, conn: asyncpg.Connection,
                           names: Sequence[str] | None) -> None:
        """``--verify``: the rows this transaction wrote (their ``xmin`` is its id), read back
        and summed as the source's were, before the commit (see :mod:`connectors.verify`)."""
        check = self.verify_check
        if check is None:
            return
        ep, inserted = self.written_table()
        if ep is None:
            raise ConfigError("--verify needs a target table or a plain insertQuery",
                              connector=self.describe)
        table = ep.quoted_table()
        stmt = await conn.prepare(f"SELECT * FROM {table}")
        target = attributes_schema(stmt.get_attributes())
        columns = aligned_schema(inserted or names or target.names, target)
        select = ", ".join(quote_ident(c.name, "postgresql") for c in columns.columns)
        summer = RowChecksum(columns)
        query = await conn.prepare(
            f"SELECT {select} FROM {table} WHERE xmin = pg_current_xact_id()::xid")
        cursor = await query.cursor()
        while records := await cursor.fetch(5000):
            summer.add_rows(records)
        await check(summer.rows, summer.checksum())

    async def _prepare_table(self, conn: asyncpg.Connection, hint: Schema | None) -> None:
        """Run ``createTableSql`` or create from the source schema when the table is missing."""
        ep = self.endpoint
        if not ep.table or await has_table(conn, ep.quoted_table()):
            return
        await conn.execute(self.create_statement(hint, create_table_ddl))


async def _finished(conn: asyncpg.Connection, key: str) -> bool:
    state = await checkpoint(conn, key)
    return state is not None and state[1]


def create_table_ddl(quoted_table: str, schema: Schema) -> str:
    cols = ", ".join(f"{quote_ident(c.name, 'postgresql')} {pg_column_ddl_type(c)}"
                     for c in schema.columns)
    return f"CREATE TABLE IF NOT EXISTS {quoted_table} ({cols})"


async def has_table(conn: asyncpg.Connection, quoted_table: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", quoted_table))
