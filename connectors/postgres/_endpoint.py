"""Reaching one PostgreSQL table or query: the endpoint (from a URL or a database object's
fields), its connections, and transactions that roll back (shielded) on failure or cancel.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import anyio
import asyncpg

from connectors.errors import ConfigError, connect_stage
from connectors.sql import (
    SqlEndpointFields,
    SqlUrl,
    split_qualified,
)
from connectors.timeouts import current_watch, in_phase

from ._errors import map_errors
from ._tracing import TracedConnection
from ._watched import watched

_CLEANUP_TIMEOUT = 5.0
#: What asyncpg's own connect timeout is set above ours by: ours fires first, naming the phase.
_DRIVER_MARGIN = 5.0


class PostgresEndpoint(SqlEndpointFields):
    """Everything needed to reach one PostgreSQL table or query (a data node or a URL)."""

    dialect = "postgresql"
    product = "PostgreSQL"
    port: int = 5432
    #: pgJDBC's and the Redshift JDBC driver's properties, in seconds (``loginTimeout`` bounds
    #: the whole connect, as ``connect_timeout`` does here).
    jdbc_timeouts: ClassVar[dict[str, tuple[str, float]]] = {
        "connectTimeout": ("connect", 1.0), "loginTimeout": ("connect", 1.0),
        "socketTimeout": ("read", 1.0)}
    redshift: bool = False
    #: Set to make a load idempotent under this key (see ``_resumable``): on the rows lane
    #: batches + checkpoint + swap (resumable); on the bytes lane one transaction that also
    #: marks the key finished. A key found finished loads nothing.
    checkpoint_key: str | None = None
    batch_rows: int = 50_000

    @classmethod
    def _fields_of_url(cls, url: SqlUrl) -> dict[str, Any]:
        """Redshift (``jdbc:redshift://``), and ``?schema=`` for an unqualified table."""
        return {"redshift": url.redshift, "schema_name": url.params.get("schema")}

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

    async def connect(self, operation: str = "connect") -> asyncpg.Connection:
        """A connection, within ``connect_timeout`` in all (TCP, startup, authentication:
        asyncpg runs them as one step, so the phase named is ``connect``)."""
        stage = connect_stage(operation)
        limit = self.timeouts.connect
        with self.timeouts.watch("connect", "connect", connector=self.describe(),
                                 operation=stage), \
                map_errors(self.describe(), stage, connecting=True):
            return await asyncpg.connect(
                host=self.host, port=self.port, user=self.user, database=self.database,
                password=self.password.get_secret_value() if self.password else None,
                timeout=limit + _DRIVER_MARGIN if limit else None, ssl=False,
                connection_class=TracedConnection,
                server_settings={"application_name": "headrace", "TimeZone": "UTC"})


def as_endpoint(dsn: str | PostgresEndpoint) -> PostgresEndpoint:
    """``dsn`` itself when it is an endpoint, else the endpoint its URL names."""
    return dsn if isinstance(dsn, PostgresEndpoint) else PostgresEndpoint.from_url(dsn)


@asynccontextmanager
async def connection(ep: PostgresEndpoint, operation: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection for ``operation``, its silences bounded by ``read_timeout`` while in use
    (:mod:`._watched`); closed on the way out (terminated when the server went silent)."""
    conn = await ep.connect(operation)
    watch = None
    try:
        with watched(conn, ep.timeouts, ep.describe(), operation) as watch:
            yield conn
    finally:
        if watch is not None and watch.expired:
            conn.terminate()
        else:
            with anyio.CancelScope(shield=True):
                await _close(conn)


def _silenced() -> bool:
    """True when the server went silent on the task's connection: waiting on it for a
    rollback or a goodbye would only wait again."""
    watch = current_watch()
    return watch is not None and watch.expired


async def _close(conn: asyncpg.Connection) -> None:
    if not conn.is_closed():
        await _or_terminate(conn, conn.close)


async def _or_terminate(conn: asyncpg.Connection,
                        cleanup: Callable[[], Awaitable[object]]) -> None:
    """Run ``cleanup`` (close, roll back) shielded and bounded; when it fails or does not
    finish in time, terminate the connection (the server then ends its session itself)."""
    with anyio.move_on_after(_CLEANUP_TIMEOUT, shield=True) as scope:
        try:
            await cleanup()
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
        if _silenced():
            conn.terminate()  # the server aborts the transaction itself
        else:
            await _or_terminate(conn, tr.rollback)
        raise
    with in_phase("commit"):
        await tr.commit()


@asynccontextmanager
async def translated_transaction(conn: asyncpg.Connection, ep: PostgresEndpoint,
                                  operation: str) -> AsyncIterator[None]:
    with map_errors(ep.describe(), operation):
        async with transaction(conn):
            yield
