"""PostgreSQL (and Redshift-protocol) source and sink on asyncpg.

Bytes lane: ``COPY ... TO STDOUT`` / ``COPY ... FROM STDIN`` in CSV or text format, so the
server formats and parses every value and Python only moves buffers (BASELINES.md: asyncpg's
COPY reads as fast as psql). Rows lane: a server-side cursor out, binary
``copy_records_to_table`` in (or ``insertQuery`` through ``executemany``), with values coerced to
the target column's type.

A load runs in one transaction: end-of-stream commits, any failure or cancellation rolls back
(in shielded cleanup), so a reader never sees part of a load. Table names are always quoted
identifiers and values always bound parameters.

The pieces: :mod:`connectors.pg_endpoint` (endpoint, connections, transactions),
:mod:`connectors.pg_errors`, :mod:`connectors.pg_copy` (COPY formats and loads),
:mod:`connectors.pg_source`, :mod:`connectors.pg_sink`. This module builds sources and sinks
from URLs, holds the helpers the rest of the engine calls (scripts, preconditions, Redshift
loads) and re-exports the pieces' public names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from connectors.base import EndpointOptions, Progress, TextFormat
from connectors.errors import ConfigError
from connectors.pg_copy import _coerce_row, _coercers
from connectors.pg_copy import _copy_count as _copy_count
from connectors.pg_copy import _copy_options as _copy_options
from connectors.pg_copy import _target_columns as _target_columns
from connectors.pg_copy import copy_rows_in as copy_rows_in
from connectors.pg_copy import copy_stream_in as copy_stream_in
from connectors.pg_endpoint import CONNECT_TIMEOUT as CONNECT_TIMEOUT
from connectors.pg_endpoint import MAX_CHUNK as MAX_CHUNK
from connectors.pg_endpoint import PostgresEndpoint, _connection, _transaction_translated
from connectors.pg_endpoint import _transaction as _transaction
from connectors.pg_errors import map_error as map_error
from connectors.pg_errors import translate_errors
from connectors.pg_sink import PostgresSink, _exists
from connectors.pg_sink import create_table_ddl as create_table_ddl
from connectors.pg_source import ROWS_PER_BATCH as ROWS_PER_BATCH
from connectors.pg_source import PostgresSource
from connectors.pg_source import _attributes_schema as _attributes_schema
from connectors.sqltext import convert_placeholders, split_statements
from connectors.sqltypes import truthy


def source_from_url(url: str, options: EndpointOptions) -> PostgresSource:
    """``postgresql://user:pw@host:port/db?table=schema.t`` (or ``options.query``) as a Source."""
    return PostgresEndpoint.from_url(url, options).source()


def sink_from_url(url: str, options: EndpointOptions) -> PostgresSink:
    """``postgresql://user:pw@host:port/db?table=schema.t`` as a Sink (``options.create``)."""
    return PostgresEndpoint.from_url(url, options).sink()


# --- helpers for the rest of the engine --------------------------------------------------------

def _endpoint(dsn: str | PostgresEndpoint) -> PostgresEndpoint:
    return dsn if isinstance(dsn, PostgresEndpoint) else PostgresEndpoint.from_url(dsn)


async def execute_script(dsn: str | PostgresEndpoint, script: str,
                         args: Sequence[Any] = ()) -> None:
    """Run a SqlActivity script (several statements) in one transaction.

    ``?`` placeholders are bound to ``args`` in order across the whole script; each value is
    coerced to the parameter's type (``scriptArgument`` values arrive as strings).
    """
    ep = _endpoint(dsn)
    statements = split_statements(script, "postgresql")
    converted = [convert_placeholders(s, "postgresql") for s in statements]
    wanted = sum(n for _, n in converted)
    if wanted != len(args):
        raise ConfigError(f"the script has {wanted} '?' placeholders but {len(args)} "
                          "scriptArgument values were given", connector=ep.describe(),
                          operation="script")
    async with _connection(ep, "script") as conn, _transaction_translated(conn, ep, "script"):
        position = 0
        for number, (sql, n) in enumerate(converted, start=1):
            with translate_errors(ep.describe(), f"script statement {number}"):
                if n == 0:
                    await conn.execute(sql)
                    continue
                stmt = await conn.prepare(sql)
                coercers = _coercers([p.name for p in stmt.get_parameters()])
                values = _coerce_row(args[position:position + n], coercers,
                                     [f"${i + 1}" for i in range(n)], number)
                await stmt.fetch(*values)
                position += n


async def query_is_true(dsn: str | PostgresEndpoint, sql: str) -> bool:
    """SqlQuery-style precondition: a first row exists and its first column is truthy."""
    ep = _endpoint(dsn)
    async with _connection(ep, "precondition") as conn:
        with translate_errors(ep.describe(), "precondition"):
            row = await conn.fetchrow(sql)
    return row is not None and len(row) > 0 and truthy(row[0])


async def table_exists(dsn: str | PostgresEndpoint, table: str) -> bool:
    """True when ``table`` (``schema.table`` allowed, quoted as identifiers) exists."""
    ep = _endpoint(dsn)
    quoted = ep.model_copy(update={"table": table}).quoted_table()
    async with _connection(ep, "table exists") as conn:
        with translate_errors(ep.describe(), "table exists"):
            return await _exists(conn, quoted)


InsertMode = Literal["KEEP_EXISTING", "OVERWRITE_EXISTING", "TRUNCATE", "APPEND"]


async def redshift_copy_load(target: str | PostgresEndpoint, source: Any, *,
                             insert_mode: InsertMode, table: str | None = None,
                             fmt: TextFormat | None = None,
                             primary_keys: Sequence[str] | None = None,
                             transform_sql: str | None = None,
                             progress: Progress | None = None) -> int:
    """RedshiftCopyActivity on a PostgreSQL-compatible target; see :mod:`connectors.pg_merge`."""
    from connectors.pg_merge import redshift_copy_load as load

    return await load(_endpoint(target), source, insert_mode=insert_mode, table=table,
                      fmt=fmt, primary_keys=primary_keys, transform_sql=transform_sql,
                      progress=progress)
