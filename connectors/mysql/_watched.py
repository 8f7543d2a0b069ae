"""MySQL driver connections on which every wait for the server is bounded.

Neither driver bounds more than the TCP connect (``connect_timeout``): a server that accepts the
connection and then says nothing (no greeting, no reply to a query, a result that stops
mid-stream) was waited for forever. Each driver has one primitive that waits for the server's
bytes: aiomysql's ``Connection._read_bytes`` and asyncmy's ``Connection._fill_buffer``; the
subclasses here run it under the endpoint's ``read_timeout`` (a :class:`~connectors.timeouts.
Watch`), so every reply, row and commit is covered, mid-stream included. A connect is watched
as a whole by ``connect_timeout`` (:func:`open_watched`), and the error then names the phase it
was in: ``connect`` (TCP), ``greeting``, ``auth`` or ``session`` (our session settings).

When a watch fires, the driver's read is cancelled and the driver closes the connection (both
treat a cancelled read as a desynchronised stream), so the server rolls back what was open.
"""

from __future__ import annotations

from typing import Any

import aiomysql
import asyncmy

from connectors.timeouts import Timeouts

#: aiomysql internals used here (their source is pinned by hash in the tests).
PINNED = ("Connection._connect", "Connection._read_bytes")

#: asyncmy wants a connect timeout; the connect's own watch bounds it, this only backs it.
_DRIVER_CONNECT_LIMIT = 31_536_000


class _Bounds:
    """What a watched connection knows to bound its reads: set by :func:`open_watched`."""

    bounds: Timeouts = Timeouts()
    where: str = "mysql"
    operation: str = "connect"
    #: The phase a read is in; None while connecting (the connect's watch covers it).
    read_phase: str | None = None
    #: Set at the first read from the server (so the TCP connect is done).
    reading: bool = False
    #: Set once the session's own settings are being sent (a phase of the connect).
    in_session: bool = False

    def read_watch(self) -> Any:
        return self.bounds.watch("read", self.read_phase or "read", connector=self.where,
                                 operation=self.operation)

    def write_watch(self) -> Any:
        """Around a wait for the server to take our bytes (a full send buffer)."""
        return self.bounds.watch("read", "write", connector=self.where,
                                 operation=self.operation)


class WatchedWriter(_Bounds, aiomysql.Connection):  # type: ignore[misc]
    """aiomysql (writes, DDL, LOAD DATA) with every read of the server bounded."""

    async def _read_bytes(self, num_bytes: int) -> bytes:
        if self.read_phase is None:
            self.reading = True
            return await super()._read_bytes(num_bytes)  # type: ignore[no-any-return]
        with self.read_watch():
            return await super()._read_bytes(num_bytes)  # type: ignore[no-any-return]

    async def open(self) -> None:
        await self._connect()


class WatchedReader(_Bounds, asyncmy.Connection):
    """asyncmy (reads) with every wait for the server's bytes bounded."""

    async def _fill_buffer(self, need: int) -> None:
        if self.read_phase is None:
            self.reading = True
            await super()._fill_buffer(need)  # type: ignore[misc]
            return
        with self.read_watch():
            await super()._fill_buffer(need)  # type: ignore[misc]

    async def open(self) -> None:
        await self.connect()


def connect_phase(conn: Any) -> str:
    """Which phase of connecting ``conn`` (either driver) was in: asked when the connect's
    watch fired, after the driver reacted to the cancel (and may have closed its streams), so
    only state neither driver clears is read."""
    if getattr(conn, "in_session", False):
        return "session"
    if not getattr(conn, "reading", False):
        return "connect"
    if not getattr(conn, "server_version", None):
        return "greeting"
    if getattr(conn, "connected_time", None) or getattr(conn, "_connected", False):
        return "session"  # the driver's own settings (autocommit, charset) after auth
    return "auth"


def writer_connection(*, bounds: Timeouts, where: str, operation: str,
                      **kwargs: Any) -> WatchedWriter:
    conn = WatchedWriter(connect_timeout=None, **kwargs)
    _configure(conn, bounds, where, operation)
    return conn


def reader_connection(*, bounds: Timeouts, where: str, operation: str,
                      **kwargs: Any) -> WatchedReader:
    conn = WatchedReader(connect_timeout=_DRIVER_CONNECT_LIMIT,  # type: ignore[no-untyped-call]
                         **kwargs)
    _configure(conn, bounds, where, operation)
    return conn


def _configure(conn: _Bounds, bounds: Timeouts, where: str, operation: str) -> None:
    conn.bounds, conn.where, conn.operation = bounds, where, operation
    conn.read_phase = None
    conn.reading = conn.in_session = False
