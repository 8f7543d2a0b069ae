"""Reading one MySQL/MariaDB table as N primary-key ranges at once, all from one consistent
view of it.

Consistency: InnoDB has no exported snapshot to share, so the readers are lined up instead.
A coordinating connection takes ``LOCK TABLES t READ``, which waits for every transaction
that wrote to ``t`` to end and keeps new writers out; while it is held each reader starts
``START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`` (its InnoDB read view is created
then), and then the lock is released. Every reader therefore sees ``t`` with exactly the same
committed rows, and rows committed after the copy started never appear. Writers to ``t``
wait for the few milliseconds the readers take to start (a writer that holds ``t`` open in a
long transaction delays the copy until it ends). The lock needs the ``LOCK TABLES``
privilege; without it the copy fails and says so (``--partitions 1`` reads one stream in one
transaction, as before).

Ranges: a single integer key whose values are dense (as many rows as values between its
smallest and largest) is split by value; any other key (gaps, composite, text) by quantiles
from one ordered pass over the key (``ROW_NUMBER()``, every ``rows / N``-th key). The first
range has no lower bound and the last no upper bound, so every row is read exactly once. A
table without a primary key is read as one stream (InnoDB has no ``ctid``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskStatus
from asyncmy.cursors import SSCursor

from connectors.base import BytesOut, Progress, RowBatch, RowsOut, Schema, TextFormat, Total
from connectors.errors import ConfigError
from connectors.sql import quantiles, quote_ident

from ._columns import estimated_rows
from ._endpoint import MySqlEndpoint, reader
from ._fetch import fetch_gated, fix_rows, row_fixes
from ._lines import Kind, line_select

_INTEGER_TYPES = ("tinyint", "smallint", "mediumint", "int", "integer", "bigint")
#: A single integer key is split by value when it holds at least this share of the values
#: between its bounds.
_DENSE = 0.5


@dataclass(frozen=True)
class Part:
    where: str = ""  # SQL condition with literal values (escaped by the driver); "" = all

    def query(self, table: str) -> str:
        return f"SELECT * FROM {table}" + (f" WHERE {self.where}" if self.where else "")


async def primary_key(conn: Any, ep: MySqlEndpoint) -> list[tuple[str, str]]:
    """(column, data type) of the primary key in key order; [] without one."""
    db, name = ep.table_parts()
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT k.COLUMN_NAME, c.DATA_TYPE FROM information_schema.KEY_COLUMN_USAGE k "
            "JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = k.TABLE_SCHEMA AND "
            "c.TABLE_NAME = k.TABLE_NAME AND c.COLUMN_NAME = k.COLUMN_NAME "
            "WHERE k.TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND k.TABLE_NAME = %s AND "
            "k.CONSTRAINT_NAME = 'PRIMARY' ORDER BY k.ORDINAL_POSITION", (db, name))
        return [(str(r[0]), str(r[1]).lower()) for r in await cur.fetchall()]


def _ranges(conn: Any, key: Sequence[str], bounds: Sequence[tuple[Any, ...]]) -> list[Part]:
    cols = [quote_ident(c, "mysql") for c in key]
    row = f"({', '.join(cols)})" if len(cols) > 1 else cols[0]

    def value(bound: tuple[Any, ...]) -> str:
        literals = [conn.escape(v) for v in bound]
        return f"({', '.join(literals)})" if len(literals) > 1 else literals[0]

    parts = [Part(f"{row} < {value(bounds[0])}")]
    for low, high in itertools.pairwise(bounds):
        parts.append(Part(f"{row} >= {value(low)} AND {row} < {value(high)}"))
    parts.append(Part(f"{row} >= {value(bounds[-1])}"))
    return parts



async def plan_parts(conn: Any, ep: MySqlEndpoint, n: int) -> list[Part]:
    """At most ``n`` parts covering the table exactly once (module docstring)."""
    key = await primary_key(conn, ep) if n > 1 else []
    if not key:
        return [Part()]
    table = ep.quoted_table()
    cols = ", ".join(quote_ident(c, "mysql") for c, _ in key)
    rows = await estimated_rows(conn, ep) or 0
    async with conn.cursor() as cur:
        if len(key) == 1 and key[0][1] in _INTEGER_TYPES:
            await cur.execute(f"SELECT MIN({cols}), MAX({cols}) FROM {table}")
            low, high = await cur.fetchone()
            if low is None:
                return [Part()]
            span = int(high) - int(low) + 1
            if rows >= _DENSE * span:
                values = sorted({int(low) + span * i // n for i in range(1, n)} - {int(low)})
                return _ranges(conn, [c for c, _ in key], [(v,) for v in values]) \
                    if values else [Part()]
        step = max(1, rows // (4 * n))
        await cur.execute(
            f"SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER (ORDER BY {cols}) AS rn "
            f"FROM {table}) AS q WHERE (rn - 1) % {int(step)} = 0 ORDER BY {cols}")
        keys = [tuple(r) for r in await cur.fetchall()]
    bounds = quantiles(keys, n) if keys else []
    return _ranges(conn, [c for c, _ in key], bounds) if bounds else [Part()]


@dataclass
class _Shared:
    endpoint: MySqlEndpoint
    describe: str
    progress: Progress
    columns: list[tuple[str, Kind, Any]]
    schema: Schema


async def read_partitioned(endpoint: MySqlEndpoint, describe: str, out: BytesOut | RowsOut,
                           progress: Progress, *, columns: list[tuple[str, Kind, Any]],
                           schema: Schema, fmt: TextFormat | None) -> None:
    """Read the table as ``endpoint.partitions`` key ranges into ``out``: lines built by the
    server in ``fmt`` (no header: the caller sent it), else row batches."""
    table = endpoint.quoted_table()
    async with reader(endpoint, "partition") as coord:
        parts = await plan_parts(coord, endpoint, endpoint.partitions)
        shared = _Shared(endpoint, describe, progress, columns, schema)
        total = await estimated_rows(coord, endpoint) if len(parts) > 1 else None
        tallies = [progress.open_part(Total(rows=total // len(parts), estimated=True)
                                      if total is not None else None) for _ in parts]
        line = [1]
        async with anyio.create_task_group() as tg:
            await _lock(coord, table, describe)
            try:
                for part, tally in zip(parts, tallies, strict=True):
                    await tg.start(_read_part, shared, part.query(table), tally, fmt, out, line)
            finally:
                with anyio.CancelScope(shield=True):
                    async with coord.cursor() as cur:
                        await cur.execute("UNLOCK TABLES")


async def _lock(coord: Any, table: str, describe: str) -> None:
    try:
        async with coord.cursor() as cur:
            await cur.execute(f"LOCK TABLES {table} READ")
    except Exception as exc:
        raise ConfigError(
            f"partitioned reads line their readers up with LOCK TABLES {table} READ, which "
            f"the server refused ({exc}); grant LOCK TABLES or read one stream "
            "(--partitions 1)", connector=describe, operation="partition") from exc


async def _read_part(shared: _Shared, query: str, tally: Progress, fmt: TextFormat | None,
                     out: Any, line: list[int], *, task_status: TaskStatus[None]) -> None:
    ep = shared.endpoint
    async with reader(ep, "SELECT") as conn:
        async with conn.cursor() as cur:
            await cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        task_status.started()
        cur = conn.cursor(SSCursor)  # never drained on failure (see _source)
        if fmt is None:
            await cur.execute(query)
            fixes = row_fixes(shared.columns)
            async for rows in fetch_gated(conn, cur):
                batch = [tuple(r) for r in rows] if not fixes else fix_rows(rows, fixes)
                first = line[0]
                line[0] += len(batch)
                await out.send(RowBatch(shared.schema, batch, first_line=first))
                shared.progress.add(rows=len(batch))
                tally.add(rows=len(batch))
            return
        await cur.execute(line_select([(n, k) for n, k, _ in shared.columns], fmt, query))
        limit = max(1, ep.chunk_size)
        pending: list[bytes] = []
        size = 0
        async for rows in fetch_gated(conn, cur):
            shared.progress.add(rows=len(rows))
            tally.add(rows=len(rows))
            lines = [r[0] for r in rows]  # kept as they are, joined once per chunk
            pending += lines
            size += sum(map(len, lines))
            if size >= limit:  # whole rows only: the parts interleave by chunk
                await _send(out, pending, shared.progress, tally)
                pending, size = [], 0
        if pending:
            await _send(out, pending, shared.progress, tally)


async def _send(out: Any, pending: list[bytes], progress: Progress, tally: Progress) -> None:
    chunk = b"".join(pending)
    await out.send(chunk)
    progress.add(nbytes=len(chunk))
    tally.add(nbytes=len(chunk))
    tally.read += len(chunk)
