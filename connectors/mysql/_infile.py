"""``LOAD DATA LOCAL INFILE`` fed from an async byte stream instead of a file.

aiomysql answers the server's "send me file X" request by opening X on the local disk; it has
no way to feed the data from memory, and it never waits for the socket to drain. This module
runs the statement itself on aiomysql's protocol primitives: it sends the query, checks the
server asked for exactly the name we gave (a server can name any path; we never open files),
streams the chunks as protocol packets with backpressure (``drain`` after each chunk, bounded
by the endpoint's ``read_timeout`` on a watched connection), sends
the empty end packet and reads the result.

It relies on four aiomysql internals, whose upstream source is pinned by a hash in
``tests/integration/test_mysql.py`` so an aiomysql upgrade that changes them is noticed:
``Connection._execute_command``, ``Connection.write_packet``, ``Connection._read_packet`` and
``MySQLResult._read_load_local_packet`` (the code path this replaces).
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass

import aiomysql
from pymysql.connections import MAX_PACKET_LEN, LoadLocalPacketWrapper, OKPacketWrapper
from pymysql.constants import COMMAND
from pymysql.err import OperationalError

from connectors.tracing import traced_db

from ._watched import WatchedWriter

#: The file name the statement asks for; any other name requested by the server is refused.
STREAM_NAME = "headrace-stream"

#: Internals this module uses (checked by hash in the tests).
PINNED = (
    "Connection._execute_command",
    "Connection.write_packet",
    "Connection._read_packet",
    "MySQLResult._read_load_local_packet",
)


@dataclass
class LoadResult:
    affected_rows: int
    warning_count: int
    message: str


@traced_db("mysql", "LOAD DATA")
async def load_data_local(conn: aiomysql.Connection, sql: str,
                          chunks: AsyncIterable[bytes]) -> LoadResult:
    """Run ``sql`` (a ``LOAD DATA LOCAL INFILE 'headrace-stream' ...``) feeding ``chunks``.

    On any failure or cancellation while data is being sent the connection is closed: the
    server then aborts the statement and rolls back the open transaction, so nothing of a
    half-sent load can be committed.
    """
    conn._result = None
    await conn._execute_command(COMMAND.COM_QUERY, sql)
    first = await conn._read_packet()  # raises the server's error (no such table...)
    if first.is_ok_packet():  # the server did not ask for data (should not happen)
        return _result(first)
    if not first.is_load_local_packet():
        conn.close()
        raise OperationalError(2027, "unexpected reply to LOAD DATA LOCAL INFILE")
    requested = LoadLocalPacketWrapper(first).filename
    if isinstance(requested, bytes):
        requested = requested.decode("utf-8", "replace")
    if requested != STREAM_NAME:
        conn.write_packet(b"")
        await conn._read_packet()
        raise OperationalError(2027, f"server asked for a file we did not offer: {requested!r}")
    try:
        async for chunk in chunks:
            view = memoryview(chunk)
            for start in range(0, len(view), MAX_PACKET_LEN - 1):
                conn.write_packet(bytes(view[start:start + MAX_PACKET_LEN - 1]))
            if isinstance(conn, WatchedWriter):
                with conn.write_watch():  # a server that stops reading: bounded
                    await conn._writer.drain()
            else:
                await conn._writer.drain()
    except BaseException:
        conn.close()
        raise
    conn.write_packet(b"")
    return _result(await conn._read_packet())


def _result(packet: object) -> LoadResult:
    ok = OKPacketWrapper(packet)
    message = ok.message.decode("utf-8", "replace") if ok.message else ""
    return LoadResult(ok.affected_rows, ok.warning_count, message)
