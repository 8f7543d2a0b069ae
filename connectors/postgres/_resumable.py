"""Resumable PostgreSQL loads: batches into a staging table, a checkpoint per batch, a swap.

One big transaction (the default sink) loses all its work when the process dies. With a
``checkpoint_key`` the sink instead:

1. creates (once) a staging table ``headrace_stage_<hash>`` shaped like the target, and a row
   for the key in ``headrace_checkpoints`` (both committed before any data);
2. loads the rows in batches of ``batch_rows``; each batch and the new checkpoint
   (``rows_done``) are committed in the **same** transaction, so after a crash the checkpoint
   says exactly which rows are in staging;
3. at end-of-stream, in one transaction: moves every staged row into the target, drops the
   staging table and marks the checkpoint finished. Readers of the target see all rows or
   none.

A rerun with the same key skips the first ``rows_done`` rows of its input (the sink counts
rows, so batch boundaries need not match) and goes on from there; a rerun of a finished key
(the process died after the swap but before the engine recorded success) reads its input and
loads nothing. Keys are therefore per scheduled instance, as the engine names its attempts.
Resuming needs the source to deliver rows in the same order each time (a table read by
primary key, an ordered query, a file). An advisory lock on the key keeps two runs from
loading the same key at once.

Under a worker's lease (:data:`connectors.base.OUTPUT_FENCE`), the checkpoint row also holds
the fencing token of the latest claim that loads the key: a load registers its token first
(refused if a newer one is there), and every batch and the final swap commit only while the
row still holds that token, in the same transaction. A holder whose lease lapsed and was
claimed again therefore cannot commit. The new holder does not wait for a stale holder's
advisory lock (it may be paused indefinitely): it ends that session, which rolls back
whatever the stale holder had open.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import anyio
import asyncpg
from anyio import EndOfStream

from connectors.base import FencedOut, Progress, RowBatch, RowsIn, output_fence_token
from connectors.sql import first_line, next_batch

from ._copy import quoted

CHECKPOINTS = "headrace_checkpoints"

_CHECKPOINT_DDL = (
    f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} ("
    "key text PRIMARY KEY, target text NOT NULL, staging text NOT NULL, "
    "rows_done bigint NOT NULL DEFAULT 0, finished boolean NOT NULL DEFAULT false, "
    "updated_at timestamptz NOT NULL DEFAULT now(), fence bigint)")
#: the fencing token column, added to a checkpoint table made before it existed
_FENCE_DDL = f"ALTER TABLE {CHECKPOINTS} ADD COLUMN IF NOT EXISTS fence bigint"
#: how long a load waits for another session's lock on its key before ending that session
#: (only under a worker's lease, where the other session is a holder whose lease lapsed)
STALE_LOCK_WAIT = 2.0

log = logging.getLogger("headrace.postgres")


async def _ensure_table(conn: asyncpg.Connection) -> None:
    await conn.execute(_CHECKPOINT_DDL)
    await conn.execute(_FENCE_DDL)


async def _still_ours(conn: asyncpg.Connection, key: str, token: int | None) -> None:
    """Inside the caller's transaction: the checkpoint row holds ``token`` (row locked until
    the commit, so no newer token can be registered in between)."""
    if token is None:
        return
    held = await conn.fetchval(f"SELECT fence FROM {CHECKPOINTS} WHERE key = $1 FOR UPDATE",
                               key)
    if held != token:
        raise FencedOut(f"the load of {key} is now done under lease version {held}, not "
                        f"{token}: this worker's lease lapsed; not committed")


async def _lock_key(conn: asyncpg.Connection, key: str, token: int | None) -> None:
    """The key's advisory lock (held until the connection closes). Under a lease, a session
    still holding it after :data:`STALE_LOCK_WAIT` belongs to a holder whose lease lapsed:
    its session is ended so that this load can go on."""
    lock = _lock_id(key)
    if token is None:
        await conn.execute("SELECT pg_advisory_lock($1)", lock)
        return
    waited = 0.0
    while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock):
        if waited >= STALE_LOCK_WAIT:
            pids = await conn.fetch(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                "objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1 AND "
                "pid <> pg_backend_pid()", lock)
            for row in pids:
                log.warning("load %s: ending session %s, a stale holder of its lock (this "
                            "load holds lease version %d)", key, row["pid"], token)
                await conn.execute("SELECT pg_terminate_backend($1)", row["pid"])
            waited = 0.0
        await anyio.sleep(0.2)
        waited += 0.2


def staging_name(key: str) -> str:
    return "headrace_stage_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


async def checkpoint(conn: asyncpg.Connection, key: str) -> tuple[int, bool] | None:
    """(rows committed under ``key``, finished) or None when the key is unknown."""
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", CHECKPOINTS)
    if not exists:
        return None
    row = await conn.fetchrow(
        f"SELECT rows_done, finished FROM {CHECKPOINTS} WHERE key = $1", key)
    return None if row is None else (int(row["rows_done"]), bool(row["finished"]))


async def mark_loaded(conn: asyncpg.Connection, *, key: str, target: str, rows: int) -> None:
    """Record ``key`` as finished, inside the caller's transaction that loaded ``target`` in
    one piece (the bytes lane): a rerun that finds the key finished loads nothing, so a
    process that died after that commit and before the engine recorded it adds no
    duplicates."""
    await _ensure_table(conn)
    token = output_fence_token()
    done = await conn.fetchval(
        f"INSERT INTO {CHECKPOINTS} (key, target, staging, rows_done, finished, fence) "
        "VALUES ($1, $2, '', $3, true, $4) ON CONFLICT (key) DO UPDATE SET rows_done = $3, "
        f"finished = true, updated_at = now(), fence = $4 WHERE $4::bigint IS NULL OR "
        f"COALESCE({CHECKPOINTS}.fence, 0) <= $4 RETURNING key", key, target, rows, token)
    if done is None:
        raise FencedOut(f"the load of {key} is done under a newer lease than {token}: this "
                        "worker's lease lapsed; not committed")


async def load_resumable(conn: asyncpg.Connection, *, key: str, target: str, schema: str | None,
                         first: RowBatch, inp: RowsIn, progress: Progress, batch_rows: int,
                         copy_rows: Any) -> int:
    """Load ``first`` and the rest of ``inp`` into ``schema.target``.

    Returns how many input rows were skipped as already loaded by an earlier run.

    ``copy_rows(conn, table, schema, first_batch, rest, progress)`` is the sink's binary-COPY
    writer (coercion and error mapping included). ``conn`` must not be in a transaction.
    """
    qualified_target = f"{quoted(schema)}.{quoted(target)}" if schema else quoted(target)
    stage = staging_name(key)
    qualified_stage = f"{quoted(schema)}.{quoted(stage)}" if schema else quoted(stage)
    token = output_fence_token()
    # held until the connection closes (the sink always closes it when the load ends)
    await _lock_key(conn, key, token)
    async with conn.transaction():
        await _ensure_table(conn)
        await conn.execute(
            f"INSERT INTO {CHECKPOINTS} (key, target, staging) VALUES ($1, $2, $3) "
            "ON CONFLICT (key) DO NOTHING", key, qualified_target, qualified_stage)
        if token is not None:  # register this claim's token: older holders can commit no more
            registered = await conn.fetchval(
                f"UPDATE {CHECKPOINTS} SET fence = $2 WHERE key = $1 AND "
                "COALESCE(fence, 0) <= $2 RETURNING key", key, token)
            if registered is None:
                raise FencedOut(f"the load of {key} is done under a newer lease than "
                                f"{token}: this worker's lease lapsed; not loading")
        state = await conn.fetchrow(
            f"SELECT rows_done, finished FROM {CHECKPOINTS} WHERE key = $1", key)
        if not state["finished"]:
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {qualified_stage} "
                               f"(LIKE {qualified_target} INCLUDING DEFAULTS)")
    done = int(state["rows_done"])
    if state["finished"]:
        return await _drain(first, inp)
    to_skip = skipped = done
    pending: list[tuple[Any, ...]] = []
    pending_first: int | None = None
    batch: RowBatch | None = first
    seen = 0

    async def flush() -> None:
        nonlocal pending, pending_first, done
        if not pending:
            return
        rows = RowBatch(first.schema, pending, first_line=pending_first)
        async with conn.transaction():
            await _still_ours(conn, key, token)
            await copy_rows(conn, stage, schema, rows, _Empty(), Progress())
            await conn.execute(f"UPDATE {CHECKPOINTS} SET rows_done = rows_done + $2, "
                               "updated_at = now() WHERE key = $1", key, len(pending))
        done += len(pending)
        progress.add(rows=len(pending))
        pending, pending_first = [], None

    while batch is not None:
        base = first_line(batch, seen)
        rows = batch.rows
        seen += len(rows)
        if to_skip:
            skip = min(to_skip, len(rows))
            to_skip -= skip
            rows = rows[skip:]
            base += skip
        for i, row in enumerate(rows):
            if pending_first is None:
                pending_first = base + i
            pending.append(row)
            if len(pending) >= batch_rows:
                await flush()
        batch = await next_batch(inp)
    await flush()
    async with conn.transaction():
        await _still_ours(conn, key, token)
        await conn.execute(f"INSERT INTO {qualified_target} SELECT * FROM {qualified_stage}")
        await conn.execute(f"DROP TABLE {qualified_stage}")
        await conn.execute(f"UPDATE {CHECKPOINTS} SET finished = true, updated_at = now() "
                           "WHERE key = $1", key)
    return skipped


async def _drain(first: RowBatch, inp: RowsIn) -> int:
    """Read (and drop) the rest of the input; returns how many rows it held."""
    count = len(first.rows)
    async for batch in inp:
        count += len(batch.rows)
    return count


class _Empty:
    """An already finished stream (one flushed batch is copied at a time)."""

    async def receive(self) -> RowBatch:
        raise EndOfStream


async def save_watermark(conn: asyncpg.Connection, *, key: str, target: str,
                         state: str) -> None:
    """An incremental copy's state under ``key``, in the caller's load transaction (the rows
    and their watermark commit together or not at all)."""
    await conn.execute(_CHECKPOINT_DDL)
    await conn.execute(f"ALTER TABLE {CHECKPOINTS} ADD COLUMN IF NOT EXISTS watermark text")
    await conn.execute(
        f"INSERT INTO {CHECKPOINTS} (key, target, staging, finished, watermark) "
        "VALUES ($1, $2, '', true, $3) ON CONFLICT (key) DO UPDATE SET watermark = $3, "
        "target = $2, updated_at = now()", key, target, state)


async def read_watermark(conn: asyncpg.Connection, key: str) -> str | None:
    """The state :func:`save_watermark` committed under ``key``, or None."""
    has = await conn.fetchval(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = $1 "
        "AND column_name = 'watermark' AND table_schema = ANY(current_schemas(false))",
        CHECKPOINTS)
    if not has:
        return None
    value = await conn.fetchval(f"SELECT watermark FROM {CHECKPOINTS} WHERE key = $1", key)
    return None if value is None else str(value)
