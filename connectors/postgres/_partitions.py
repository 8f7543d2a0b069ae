"""Reading one PostgreSQL table as N partitions in parallel, all from one snapshot.

The plan (:func:`plan_parts`) is made on a coordinating connection inside a ``REPEATABLE READ
READ ONLY`` transaction that exports its snapshot (``pg_export_snapshot()``):

- a table with a primary key is cut into key ranges: boundaries are quantiles of the keys in
  key order (every key of a small table, a ``TABLESAMPLE SYSTEM`` page sample of a big one),
  so gaps in the keys do not unbalance the parts; a composite key is compared as a row
  (``(a, b) >= ($1, $2)``), which is the index's own order;
- a plain table without a key is cut into ``ctid`` page ranges (TID range scans);
- anything else (a partitioned table without a key) is read as one part.

The first part has no lower bound and the last no upper bound, so every row falls in exactly
one part whatever the sample said. Each reader opens its own connection, starts ``REPEATABLE
READ READ ONLY`` and imports the snapshot (``SET TRANSACTION SNAPSHOT``) before it reads: all
parts see the table as it was when the plan was made, and rows committed after that never
appear. The coordinator ends its transaction as soon as every reader has imported the
snapshot, so the source holds N connections and N transactions during the copy.

Every reader sends whole chunks (COPY hands whole rows) to the copy's one stream, so the parts
interleave by chunk; memory stays one chunk per reader plus the stream's depth.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import asyncpg
from anyio.abc import TaskStatus

from connectors.base import BytesOut, Progress, RowsOut, Total
from connectors.errors import ConfigError
from connectors.sql import quantiles
from connectors.timeouts import waiting_on_peer

from ._copy import copy_count, quoted
from ._endpoint import PostgresEndpoint, connection
from ._errors import map_errors
from ._reads import estimated_rows, send_rows

#: Up to this many estimated rows, every key is read to place the boundaries.
ALL_KEYS_UP_TO = 50_000
#: Pages sampled per part on a bigger table (TABLESAMPLE SYSTEM takes whole pages, whose keys
#: are often neighbours: many pages, not many rows, make even parts).
PAGES_PER_PART = 64
_SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f-]+$")


@dataclass(frozen=True)
class Part:
    """One part: a condition on the table (empty: all of it) and its parameters."""

    where: str = ""
    args: tuple[Any, ...] = ()
    how: str = "whole"  # "key", "ctid" or "whole"

    def query(self, table: str) -> str:
        cond = f" WHERE {self.where}" if self.where else ""
        return f"SELECT * FROM {table}{cond}"


async def primary_key(conn: asyncpg.Connection, table: str) -> list[str]:
    """The primary key's columns in key order ([] without one)."""
    rows = await conn.fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass($1) AND i.indisprimary "
        "ORDER BY array_position(i.indkey::int2[], a.attnum)", table)
    return [str(r[0]) for r in rows]


def _row(columns: Sequence[str]) -> str:
    names = ", ".join(quoted(c) for c in columns)
    return f"({names})" if len(columns) > 1 else names


def _key_parts(key: Sequence[str], bounds: Sequence[tuple[Any, ...]]) -> list[Part]:
    """Parts split at ``bounds`` (increasing): below the first, between, from the last."""
    row = _row(key)
    width = len(key)

    def marks(start: int) -> str:
        names = ", ".join(f"${start + i}" for i in range(width))
        return f"({names})" if width > 1 else names

    parts = [Part(f"{row} < {marks(1)}", bounds[0], "key")]
    for low, high in itertools.pairwise(bounds):
        parts.append(Part(f"{row} >= {marks(1)} AND {row} < {marks(1 + width)}",
                          (*low, *high), "key"))
    parts.append(Part(f"{row} >= {marks(1)}", bounds[-1], "key"))
    return parts



async def _by_key(conn: asyncpg.Connection, table: str, key: Sequence[str], n: int,
                  estimate: int) -> list[Part]:
    cols = ", ".join(quoted(c) for c in key)
    pages = await _pages(conn, table)
    if estimate <= ALL_KEYS_UP_TO or not pages:
        sql = f"SELECT {cols} FROM {table} ORDER BY {cols}"
    else:
        percent = min(100.0, 100.0 * PAGES_PER_PART * n / pages)
        sql = f"SELECT {cols} FROM {table} TABLESAMPLE SYSTEM ({percent:.6f}) ORDER BY {cols}"
    keys = [tuple(r) for r in await conn.fetch(sql)]
    bounds = quantiles(keys, n) if keys else []
    return _key_parts(key, bounds) if bounds else [Part()]


async def _pages(conn: asyncpg.Connection, table: str) -> int:
    """The table's size in pages now (0 for what has no pages of its own: a partitioned
    table, a view)."""
    row = await conn.fetchrow(
        "SELECT c.relkind::text, pg_relation_size(c.oid) / current_setting('block_size')::bigint "
        "FROM pg_class c WHERE c.oid = to_regclass($1)", table)
    return int(row[1]) if row is not None and row[0] in ("r", "m") and row[1] else 0


async def _by_ctid(conn: asyncpg.Connection, table: str, n: int) -> list[Part]:
    pages = await _pages(conn, table)
    if not pages:
        return [Part()]
    bounds = sorted({pages * i // n for i in range(1, n)} - {0})
    if not bounds:
        return [Part()]
    parts = [Part(f"ctid < '({bounds[0]},0)'::tid", how="ctid")]
    for low, high in itertools.pairwise(bounds):
        parts.append(Part(f"ctid >= '({low},0)'::tid AND ctid < '({high},0)'::tid",
                          how="ctid"))
    parts.append(Part(f"ctid >= '({bounds[-1]},0)'::tid", how="ctid"))
    return parts


async def plan_parts(conn: asyncpg.Connection, table: str, n: int) -> list[Part]:
    """At most ``n`` parts covering ``table`` (quoted) exactly once (module docstring)."""
    if n <= 1:
        return [Part()]
    key = await primary_key(conn, table)
    if key:
        return await _by_key(conn, table, key, n,
                             await estimated_rows(conn, f"SELECT * FROM {table}"))
    return await _by_ctid(conn, table, n)


@dataclass
class _Reader:
    """What every part's reader shares."""

    endpoint: PostgresEndpoint
    table: str
    snapshot: str
    progress: Progress
    describe: str


async def _begin_in_snapshot(conn: asyncpg.Connection, snapshot: str) -> None:
    await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    await conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")


async def read_partitioned(endpoint: PostgresEndpoint, describe: str, out: BytesOut | RowsOut,
                           progress: Progress, *, copy_opts: dict[str, Any] | None,
                           header: bool) -> None:
    """Read the endpoint's table as ``endpoint.partitions`` parts into ``out``: COPY bytes
    with ``copy_opts`` (a header line first when ``header``), else row batches."""
    table = endpoint.quoted_table()
    async with connection(endpoint, "partition") as coord:
        with map_errors(describe, "partition"):
            await coord.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = str(await coord.fetchval("SELECT pg_export_snapshot()"))
            if not _SNAPSHOT_ID.match(snapshot):
                raise ConfigError(f"unexpected snapshot id {snapshot!r}", connector=describe)
            parts = await plan_parts(coord, table, endpoint.partitions)
            tallies = []
            for part in parts:
                est = await estimated_rows(coord, part.query(table), *part.args) \
                    if part.where else None
                tallies.append(progress.open_part(
                    Total(rows=est, estimated=True) if est is not None else None))
            if copy_opts is not None and header:
                head: list[bytes] = []
                await coord.copy_from_query(f"SELECT * FROM {table} LIMIT 0",
                                            output=_collect(head), **{**copy_opts,
                                                                     "header": True})
                if head:
                    await out.send(b"".join(head))  # type: ignore[arg-type]
                    progress.add(nbytes=sum(map(len, head)))
        shared = _Reader(endpoint, table, snapshot, progress, describe)
        counter = [1]
        # The coordinator's connection idles while the readers work (their own connections
        # are watched): its silence is not counted, its COMMIT is bounded on its own.
        with waiting_on_peer():
            async with anyio.create_task_group() as tg:
                for part, tally in zip(parts, tallies, strict=True):
                    if copy_opts is not None:
                        await tg.start(_copy_part, shared, part, tally, copy_opts, out)
                    else:
                        await tg.start(_rows_part, shared, part, tally, out, counter)
                # every reader holds the snapshot now: the coordinator's transaction can end
                with map_errors(describe, "partition"), endpoint.timeouts.watch(
                        "read", "commit", connector=describe, operation="partition"):
                    await coord.execute("COMMIT")


def _collect(into: list[bytes]) -> Any:
    async def take(data: bytes) -> None:
        into.append(bytes(data))
    return take


async def _copy_part(shared: _Reader, part: Part, tally: Progress, opts: dict[str, Any],
                     out: BytesOut, *, task_status: TaskStatus[None]) -> None:
    limit = max(1, shared.endpoint.chunk_size)
    buf: list[bytes] = []
    size = 0

    async def flush() -> None:
        nonlocal size
        chunk = b"".join(buf)
        buf.clear()
        size = 0
        await out.send(chunk)
        shared.progress.add(nbytes=len(chunk))
        tally.add(nbytes=len(chunk))
        tally.read += len(chunk)

    async def take(data: bytes) -> None:
        nonlocal size
        buf.append(data)
        size += len(data)
        if size >= limit:
            await flush()

    async with connection(shared.endpoint, "COPY TO") as conn:
        with map_errors(shared.describe, "COPY TO"):
            await _begin_in_snapshot(conn, shared.snapshot)
            task_status.started()
            status = await conn.copy_from_query(part.query(shared.table), *part.args,
                                                output=take, **{**opts, "header": False})
            await conn.execute("COMMIT")
    if buf:
        await flush()
    rows = copy_count(status)
    shared.progress.add(rows=rows)
    tally.add(rows=rows)


async def _rows_part(shared: _Reader, part: Part, tally: Progress, out: RowsOut,
                     counter: list[int], *,
                     task_status: TaskStatus[None]) -> None:
    async with connection(shared.endpoint, "SELECT") as conn:
        with map_errors(shared.describe, "SELECT"):
            await _begin_in_snapshot(conn, shared.snapshot)
            task_status.started()
            await send_rows(conn, part.query(shared.table), part.args, out,
                            _Both(shared.progress, tally), counter)
            await conn.execute("COMMIT")


class _Both(Progress):
    """Counts into the source's Progress and one part's tally."""

    def __init__(self, whole: Progress, part: Progress) -> None:
        super().__init__()
        self._whole, self._part = whole, part

    def add(self, *, rows: int = 0, nbytes: int = 0) -> None:
        self._whole.add(rows=rows, nbytes=nbytes)
        self._part.add(rows=rows, nbytes=nbytes)
