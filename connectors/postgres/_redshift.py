"""RedshiftCopyActivity's load on a PostgreSQL-compatible target.

The input is copied (through :func:`connectors.copy.copy`, so any source and format work) into
a temporary table ``staging`` created ``LIKE`` the target, optionally reshaped by
``transformSql`` (a SELECT over ``staging``), and merged into the target by ``insertMode``, all
in one transaction on one connection: a failure leaves the target as it was.

* ``KEEP_EXISTING``: insert rows whose key is not in the table yet;
* ``OVERWRITE_EXISTING``: rows whose key matches replace the existing ones;
* ``TRUNCATE``: delete every row first; ``APPEND``: insert everything (no key handling).

The key is ``primaryKeys`` when given, else the table's primary key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import asyncpg

from connectors.base import BytesIn, Progress, RowsIn, Schema, Source, TextFormat
from connectors.copy import CopyOptions, copy
from connectors.errors import ConfigError, NotFoundError
from connectors.sql import next_batch

from ._copy import (
    copy_count,
    copy_options,
    copy_rows_in,
    copy_stream_in,
    quoted,
    table_columns,
)
from ._endpoint import PostgresEndpoint, as_endpoint, connection, translated_transaction
from ._errors import map_errors
from ._sink import has_table

InsertMode = Literal["KEEP_EXISTING", "OVERWRITE_EXISTING", "TRUNCATE", "APPEND"]
MODES: tuple[InsertMode, ...] = ("KEEP_EXISTING", "OVERWRITE_EXISTING", "TRUNCATE", "APPEND")


class _StagingSink:
    """A Sink writing into a table on an already open connection, inside its transaction."""

    describe = "staging table"

    def __init__(self, conn: asyncpg.Connection, table: str, schema: Schema) -> None:
        self._conn = conn
        self._table = table
        self._schema = schema

    @property
    def native_format(self) -> TextFormat | None:
        return None

    def can_consume(self, fmt: TextFormat) -> bool:
        return copy_options(fmt, loading=True) is not None

    async def schema(self) -> Schema | None:
        return self._schema

    async def consume_bytes(self, fmt: TextFormat, inp: BytesIn, progress: Progress) -> None:
        opts = copy_options(fmt, loading=True) or {}
        status = await copy_stream_in(self._conn, self._table, None, inp, opts, progress,
                                      fmt=fmt, columns=self._schema.names if self._schema
                                      else (), where=f"staging table {self._table}")
        progress.add(rows=copy_count(status))

    async def consume_rows(self, inp: RowsIn, progress: Progress) -> None:
        first = await next_batch(inp)
        if first is None:
            return
        await copy_rows_in(self._conn, self._table, None, first, inp, progress)


async def redshift_copy_load(target: str | PostgresEndpoint, source: Source, *,
                             insert_mode: InsertMode | str,
                             table: str | None = None, fmt: TextFormat | None = None,
                             primary_keys: Sequence[str] | None = None,
                             transform_sql: str | None = None,
                             progress: Progress | None = None) -> int:
    """Load ``source`` into the target table by ``insert_mode``; returns rows written."""
    ep = as_endpoint(target)
    if table:
        ep = ep.model_copy(update={"table": table})
    mode = insert_mode.upper()
    if mode not in MODES:
        raise ConfigError(f"insertMode {insert_mode!r} is not one of {', '.join(MODES)}",
                          connector=ep.describe())
    progress = progress if progress is not None else Progress()
    where = ep.describe()
    tbl = ep.quoted_table()
    async with connection(ep, "RedshiftCopy") as conn, \
            translated_transaction(conn, ep, "RedshiftCopy"):
        with map_errors(where, "RedshiftCopy"):
            if not await has_table(conn, tbl):
                if not ep.create_table_sql:
                    raise NotFoundError(f"table {ep.table} does not exist and no createTableSql "
                                        "was given", connector=where, operation="RedshiftCopy")
                await conn.execute(ep.create_table_sql)
            await conn.execute(f"CREATE TEMP TABLE staging (LIKE {tbl} INCLUDING DEFAULTS) "
                               "ON COMMIT DROP")
            schema_name, table_name = ep.table_parts()
            cols = [n for n, _ in await table_columns(conn, table_name, schema_name)]
            sink = _StagingSink(conn, "staging", Schema(()))
            formats = (fmt,) if fmt is not None else CopyOptions().common_formats
            result = await copy(source, sink, CopyOptions(common_formats=formats))
            progress.add(rows=result.rows, nbytes=result.bytes)

            collist = ", ".join(quoted(c) for c in cols)
            rows_from = f"({transform_sql}) AS s" if transform_sql else "staging AS s"
            select = f"SELECT {', '.join('s.' + quoted(c) for c in cols)} FROM {rows_from}"
            if mode in ("KEEP_EXISTING", "OVERWRITE_EXISTING"):
                keys = list(primary_keys or await _primary_key(conn, tbl))
                if not keys:
                    raise ConfigError(f"insertMode {mode} needs a key: the table has no primary "
                                      "key and no primaryKeys were given", connector=where)
                match = " AND ".join(f"t.{quoted(k)} = s.{quoted(k)}" for k in keys)
                if mode == "OVERWRITE_EXISTING":
                    await conn.execute(f"DELETE FROM {tbl} AS t USING {rows_from} WHERE {match}")
                    status = await conn.execute(f"INSERT INTO {tbl} ({collist}) {select}")
                else:
                    status = await conn.execute(
                        f"INSERT INTO {tbl} ({collist}) {select} WHERE NOT EXISTS "
                        f"(SELECT 1 FROM {tbl} AS t WHERE {match})")
            else:
                if mode == "TRUNCATE":
                    await conn.execute(f"DELETE FROM {tbl}")
                status = await conn.execute(f"INSERT INTO {tbl} ({collist}) {select}")
    return copy_count(status)


async def _primary_key(conn: asyncpg.Connection, quoted_table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass($1) AND i.indisprimary "
        "ORDER BY array_position(i.indkey::int2[], a.attnum)", quoted_table)
    return [r[0] for r in rows]


