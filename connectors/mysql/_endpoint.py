"""Reaching one MySQL/MariaDB table or query: the endpoint (from a URL or a data node's
fields) and its read and write connections (a write connection is one transaction).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any, ClassVar

import aiomysql
import anyio

from connectors.errors import ConfigError, connect_stage
from connectors.sql import (
    SqlEndpointFields,
    split_qualified,
)

from ._errors import map_errors
from ._watched import connect_phase, reader_connection, writer_connection

_CLEANUP_TIMEOUT = 5.0
_SESSION_SQL = ("SET SESSION time_zone = '+00:00', "
                "SESSION sql_mode = TRIM(BOTH ',' FROM CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'))")


class MySqlEndpoint(SqlEndpointFields):
    """Everything needed to reach one MySQL/MariaDB table or query (a data node or a URL)."""

    dialect = "mysql"
    product = "MySQL"
    port: int = 3306
    #: Connector/J's and MariaDB Connector/J's properties, in milliseconds.
    jdbc_timeouts: ClassVar[dict[str, tuple[str, float]]] = {
        "connectTimeout": ("connect", 0.001), "socketTimeout": ("read", 0.001)}
    #: Set to make a table load happen at most once under this key (the engine's instance):
    #: see ``_checkpoint``.
    checkpoint_key: str | None = None

    def describe(self) -> str:
        """Display name without the password."""
        return self._describe("mysql")

    def table_parts(self) -> tuple[str | None, str]:
        """(database, table) as the server names them."""
        if not self.table:
            raise ConfigError("no table given", connector=self.describe())
        parts = split_qualified(self.table, "mysql")
        if len(parts) > 2:
            raise ConfigError(f"not a valid MySQL table name: {self.table!r}",
                              connector=self.describe())
        if len(parts) == 2:
            return parts[0], parts[1]
        return (self.schema_name or None), parts[0]

    def _password(self) -> str:
        return self.password.get_secret_value() if self.password else ""

    async def connect(self, operation: str = "connect", *,
                      local_infile: bool = False) -> aiomysql.Connection:
        """An aiomysql connection (writes, DDL), autocommit off, UTC, strict mode."""
        conn = writer_connection(
            bounds=self.timeouts, where=self.describe(), operation=operation,
            host=self.host, port=self.port, user=self.user or "root", password=self._password(),
            db=self.database, charset="utf8mb4", autocommit=False, local_infile=local_infile)
        return await self._open(conn, operation)

    async def connect_reader(self, operation: str = "read") -> Any:
        """An asyncmy connection (fast decoding) for reads."""
        conn = reader_connection(
            bounds=self.timeouts, where=self.describe(), operation=operation,
            host=self.host, port=self.port, user=self.user or "root", password=self._password(),
            database=self.database, charset="utf8mb4", autocommit=True)
        return await self._open(conn, operation)

    async def _open(self, conn: Any, operation: str) -> Any:
        """Connect ``conn`` and set the session's time zone (UTC) and strict mode, all within
        ``connect_timeout``; from then on its reads are bounded by ``read_timeout``. ``conn`` is
        closed if any of it fails."""
        stage = connect_stage(operation)
        try:
            with self.timeouts.watch("connect", lambda: connect_phase(conn),
                                     connector=self.describe(), operation=stage):
                with map_errors(self.describe(), stage, connecting=True):
                    await conn.open()
                conn.in_session = True
                with map_errors(self.describe(), operation):
                    async with conn.cursor() as cur:
                        await cur.execute(_SESSION_SQL)
        except BaseException:
            conn.close()
            raise
        conn.read_phase = "read"
        return conn


def as_endpoint(dsn: str | MySqlEndpoint) -> MySqlEndpoint:
    """``dsn`` itself when it is an endpoint, else the endpoint its URL names."""
    return dsn if isinstance(dsn, MySqlEndpoint) else MySqlEndpoint.from_url(dsn)


@asynccontextmanager
async def writer(ep: MySqlEndpoint, operation: str, *,
                  local_infile: bool = False) -> AsyncIterator[aiomysql.Connection]:
    """A write connection in a transaction: commit on return, roll back on failure/cancel."""
    conn = await ep.connect(operation, local_infile=local_infile)
    try:
        with map_errors(ep.describe(), operation):
            await conn.begin()
            yield conn
            conn.read_phase = "commit"
            await conn.commit()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await _rollback_and_close(conn)
        raise
    else:
        with anyio.CancelScope(shield=True):
            await _close(conn)


async def _rollback_and_close(conn: aiomysql.Connection) -> None:
    if conn.closed:
        return
    with anyio.move_on_after(_CLEANUP_TIMEOUT):
        try:
            await conn.rollback()
        except Exception:
            conn.close()
    conn.close()


async def _close(conn: aiomysql.Connection) -> None:
    with anyio.move_on_after(_CLEANUP_TIMEOUT), suppress(Exception):
        await conn.ensure_closed()
    conn.close()


@asynccontextmanager
async def reader(ep: MySqlEndpoint, operation: str) -> AsyncIterator[Any]:
    conn = await ep.connect_reader(operation)
    try:
        with map_errors(ep.describe(), operation):
            yield conn
    finally:
        conn.close()  # never drain a half-read unbuffered result: just drop the connection
