"""Reaching one PostgreSQL table or query: the endpoint (from a URL or a database object's
fields), its connections, and transactions that roll back (shielded) on failure or cancel.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import asyncpg
from pydantic import SecretStr

from connectors.base import EndpointOptions
from connectors.errors import ConfigError, connect_stage
from connectors.sql import (
    MAX_CHUNK,
    SqlEndpointFields,
    SqlUrl,
    parse_sql_url,
    quote_ident,
    split_qualified,
)

from ._errors import map_errors
from ._tracing import TracedConnection

CONNECT_TIMEOUT = 10.0
_CLEANUP_TIMEOUT = 5.0


# --- configuration ----------------------------------------------------------------------------

class PostgresEndpoint(SqlEndpointFields):
    """Everything needed to reach one PostgreSQL table or query (a data node or a URL)."""

    dialect = "postgresql"
    port: int = 5432
    redshift: bool = False
    #: Set to make a load idempotent under this key (see ``_resumable``): on the rows lane
    #: batches + checkpoint + swap (resumable); on the bytes lane one transaction that also
    #: marks the key finished. A key found finished loads nothing.
    checkpoint_key: str | None = None
    batch_rows: int = 50_000

    @classmethod
    def from_sql_url(cls, url: SqlUrl, **fields: Any) -> PostgresEndpoint:
        if url.dialect != "postgresql":
            raise ConfigError(f"not a PostgreSQL URL: {url.describe()}", connector="postgresql")
        return cls(host=url.host, port=url.port, database=url.database, user=url.user,
                   password=SecretStr(url.password) if url.password is not None else None,
                   redshift=url.redshift, **{"table": url.table, **fields})

    @classmethod
    def from_url(cls, url: str, options: EndpointOptions | None = None) -> PostgresEndpoint:
        opts = options or EndpointOptions()
        parsed = parse_sql_url(url)
        return cls.from_sql_url(parsed, select_query=opts.query, create=opts.create,
                                schema_name=parsed.params.get("schema"),
                                chunk_size=min(opts.chunk_size, MAX_CHUNK))

    def describe(self) -> str:
        """Display name without the password."""
        return self._describe("redshift" if self.redshift else "postgresql")

    def table_parts(self) -> tuple[str | None, str]:
        """(schema, table) unquoted, as the server names them."""
        if not self.table:
            raise ConfigError("no table given", connector=self.describe())
        parts = split_qualified(self.table, "postgresql")
        if len(parts) == 3:
            parts = parts[1:]  # database.schema.table: the database is the connection's
        if len(parts) == 2:
            return parts[0], parts[1]
        schema = split_qualified(self.schema_name, "postgresql")[-1] if self.schema_name else None
        return schema, parts[0]

    def quoted_table(self) -> str:
        schema, name = self.table_parts()
        q = quote_ident(name, "postgresql")
        return f"{quote_ident(schema, 'postgresql')}.{q}" if schema else q

    async def connect(self, operation: str = "connect") -> asyncpg.Connection:
        with map_errors(self.describe(), connect_stage(operation), connecting=True):
            return await asyncpg.connect(
                host=self.host, port=self.port, user=self.user, database=self.database,
                password=self.password.get_secret_value() if self.password else None,
                timeout=CONNECT_TIMEOUT, ssl=False, connection_class=TracedConnection,
                server_settings={"application_name": "headrace", "TimeZone": "UTC"})


def as_endpoint(dsn: str | PostgresEndpoint) -> PostgresEndpoint:
    """``dsn`` itself when it is an endpoint, else the endpoint its URL names."""
    return dsn if isinstance(dsn, PostgresEndpoint) else PostgresEndpoint.from_url(dsn)


@asynccontextmanager
async def connection(ep: PostgresEndpoint, operation: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await ep.connect(operation)
    try:
        yield conn
    finally:
        with anyio.CancelScope(shield=True):
            await _close(conn)


async def _close(conn: asyncpg.Connection) -> None:
    if conn.is_closed():
        return
    with anyio.move_on_after(_CLEANUP_TIMEOUT, shield=True) as scope:
        try:
            await conn.close()
        except Exception:
            conn.terminate()
    if scope.cancelled_caught:
        conn.terminate()


@asynccontextmanager
async def transaction(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """Commit when the body returns; roll back (shielded, bounded) when it fails or is cancelled.

    A connection whose rollback does not finish is terminated: the server then aborts the
    transaction itself, so nothing of it is ever committed.
    """
    tr = conn.transaction()
    await tr.start()
    try:
        yield
    except BaseException:
        with anyio.move_on_after(_CLEANUP_TIMEOUT, shield=True) as scope:
            try:
                await tr.rollback()
            except Exception:
                conn.terminate()
        if scope.cancelled_caught:
            conn.terminate()
        raise
    await tr.commit()


@asynccontextmanager
async def translated_transaction(conn: asyncpg.Connection, ep: PostgresEndpoint,
                                  operation: str) -> AsyncIterator[None]:
    with map_errors(ep.describe(), operation):
        async with transaction(conn):
            yield
