"""Loading a PostgreSQL table through N COPY streams at once (``partitions`` on the sink),
so the server parses the input on N backends; the table still changes in one transaction.

1. One transaction makes the target if asked (``--create``) and a staging table shaped like
   it (``CREATE UNLOGGED TABLE headrace_load_<random> (LIKE target INCLUDING DEFAULTS)``),
   committed so that the loaders' connections see it.
2. The input is cut at record boundaries (CSV quotes respected) and dealt round robin, a
   run of whole records at a time, to N loaders; each loads its share with ``COPY ... FROM
   STDIN`` on its own connection in its own transaction into the staging table. A header
   line is in the first run only, which goes to the first loader (the only one told so).
3. When every loader has committed, one transaction moves the staged rows into the target
   (``INSERT INTO target SELECT * FROM staging``) and drops the staging table: readers of
   the target see all rows or none, as with one stream.

On any failure or cancellation the staging table is dropped (shielded, bounded); the target
is untouched. A process killed mid-load leaves the staging table (``headrace_load_*``) and
nothing in the target. The move costs a second pass over the rows inside the server, so this
pays where parsing is the limit and cores are free: measured in benchmarks/README.md.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from typing import Any

import anyio
import asyncpg
from anyio.streams.memory import MemoryObjectReceiveStream

from connectors.base import BytesIn, Progress, TextFormat
from connectors.errors import single_failure
from connectors.sql import deal_records, record_framer
from connectors.timeouts import waiting_on_peer

from ._copy import copy_count, quoted, table_columns
from ._endpoint import PostgresEndpoint, connection, transaction
from ._errors import map_errors
from ._guard import TextGuard
from ._marker import EndMarkerQuoter

STAGING_PREFIX = "headrace_load_"
_DROP_TIMEOUT = 5.0


async def load_in_parallel(ep: PostgresEndpoint, describe: str, fmt: TextFormat,
                           opts: dict[str, Any], inp: BytesIn, progress: Progress,
                           prepare: Callable[[asyncpg.Connection], Awaitable[None]]) -> int:
    """Load ``inp`` into the endpoint's table by ``ep.partitions`` COPY streams (module
    docstring); returns the rows loaded."""
    schema, _ = ep.table_parts()
    target = ep.quoted_table()
    stage_name = STAGING_PREFIX + secrets.token_hex(6)
    stage = f"{quoted(schema)}.{quoted(stage_name)}" if schema else quoted(stage_name)
    async with connection(ep, "parallel load") as conn:
        with map_errors(describe, "parallel load"):
            async with transaction(conn):
                await prepare(conn)
                await conn.execute(f"CREATE UNLOGGED TABLE {stage} "
                                   f"(LIKE {target} INCLUDING DEFAULTS)")
                columns = [n for n, _ in await table_columns(conn, stage_name, schema)]
        try:
            with waiting_on_peer():  # this connection idles while the loaders (watched) work
                rows = await _load_stage(ep, describe, schema, stage_name, fmt, opts, inp,
                                         progress, columns)
            with map_errors(describe, "swap in"):
                async with transaction(conn):
                    await conn.execute(f"INSERT INTO {target} SELECT * FROM {stage}")
                    await conn.execute(f"DROP TABLE {stage}")
        except BaseException:
            with anyio.move_on_after(_DROP_TIMEOUT, shield=True), suppress(Exception):
                await conn.execute(f"DROP TABLE IF EXISTS {stage}")
            raise
    return rows


async def _load_stage(ep: PostgresEndpoint, describe: str, schema: str | None, stage: str,
                      fmt: TextFormat, opts: dict[str, Any], inp: BytesIn,
                      progress: Progress, columns: list[str]) -> int:
    n = ep.partitions
    streams = [anyio.create_memory_object_stream[bytes](2) for _ in range(n)]
    counts = [0] * n

    async def load(i: int, recv: MemoryObjectReceiveStream[bytes]) -> None:
        async def pieces() -> AsyncIterator[bytes]:
            while True:
                with waiting_on_peer():  # the dealer, and the copy's input behind it
                    try:
                        piece = await recv.receive()
                    except anyio.EndOfStream:
                        return
                yield piece

        own = {**opts, "header": bool(opts.get("header")) and i == 0}
        with recv:
            async with connection(ep, "COPY FROM") as conn:
                with map_errors(describe, "COPY FROM"):
                    async with transaction(conn):
                        status = await conn.copy_to_table(stage, schema_name=schema,
                                                          source=pieces(), **own)
        counts[i] = copy_count(str(status))

    # The whole stream, in order, passes the end-marker rewrite and the NUL / UTF-8 guard
    # (as one COPY stream's does) before it is cut: line numbers are the input's.
    marker = EndMarkerQuoter(fmt)
    guard = TextGuard(fmt, columns, where=describe)

    async def checked(chunk: bytes) -> bytes:
        chunk = marker.feed(chunk)
        guard.check(chunk)
        return chunk

    def last() -> bytes:
        tail = marker.finish()
        guard.check(tail)
        return tail

    with single_failure():
        async with anyio.create_task_group() as tg:
            for i, (_, recv) in enumerate(streams):
                tg.start_soon(load, i, recv)
            tg.start_soon(deal_records, inp, [send for send, _ in streams],
                          record_framer(fmt, describe), progress, checked, last)
    return sum(counts)
