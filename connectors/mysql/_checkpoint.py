"""Idempotent MySQL loads: a load under a ``checkpoint_key`` happens at most once.

The engine names each scheduled instance's load with a key. The sink claims the key by
inserting it into ``headrace_checkpoints`` (in the target table's database) in the **same**
transaction as the rows, so the key row commits with the data or not at all. A rerun (the
process died after the commit and before the engine recorded success) finds the key taken and
loads nothing; a second load racing for the key waits on the first's row lock and then finds
it taken or free. The table is created before any data: MySQL commits around DDL, so it must
not be created inside the load's transaction.

Under a worker's lease (:data:`connectors.base.OUTPUT_FENCE`) the key row also holds the
fencing token of the newest claim that loads it, as PostgreSQL's resumable loads do:

1. the load takes a named lock on the key (``GET_LOCK``, held by its connection). A session
   that still holds it after :data:`STALE_LOCK_WAIT` belongs to an older holder whose lease
   lapsed (it may be paused for ever, its transaction open): unless the key already records a
   newer token than this load's (then this load is the stale one and stops), that session is
   ended (``KILL CONNECTION``), which rolls its transaction back;
2. it registers its token in the key row (``finished`` false), refused if a newer one is
   there, and commits that before any data, so an older holder can commit no more;
3. the rows load in one transaction, which ends with ``SELECT ... FOR UPDATE`` of the key row:
   it commits only while the row still holds this load's token (the row stays locked until
   the commit, so no newer token can be registered in between), marking the key finished.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import aiomysql
import anyio
import pymysql

from connectors.base import FencedOut
from connectors.errors import TransientFault
from connectors.sql import quote_ident

CHECKPOINTS = "headrace_checkpoints"
#: how long a fenced load waits for another session's lock on its key before ending it
STALE_LOCK_WAIT = 2.0

#: MySQL's "Duplicate entry", "Table already exists", "Duplicate column name" and "You are not
#: owner of thread" errors
_DUPLICATE, _TABLE_EXISTS, _DUPLICATE_COLUMN, _NOT_OWNER = 1062, 1050, 1060, 1095
#: columns added to a checkpoint table made by an earlier release (its rows are finished loads)
_ADDED_COLUMNS = {"fence": "BIGINT NULL", "finished": "TINYINT(1) NOT NULL DEFAULT 1"}

log = logging.getLogger("headrace.mysql")


def table(database: str | None) -> str:
    """The checkpoint table beside the target (the connection's database when unqualified)."""
    return f"{quote_ident(database, 'mysql')}.{CHECKPOINTS}" if database else CHECKPOINTS


async def _columns(cur: Any, database: str | None) -> set[str]:
    await cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                      "AND table_schema = COALESCE(%s, DATABASE())", (CHECKPOINTS, database))
    return {str(row[0]).lower() for row in await cur.fetchall()}


async def _add_column(cur: Any, database: str | None, name: str, ddl: str) -> None:
    try:
        await cur.execute(f"ALTER TABLE {table(database)} ADD COLUMN {name} {ddl}")
    except pymysql.err.OperationalError as exc:
        if not (exc.args and exc.args[0] == _DUPLICATE_COLUMN):  # a racing load added it
            raise


async def prepare(conn: aiomysql.Connection, database: str | None,
                  extra: dict[str, str] | None = None) -> None:
    """Create the checkpoint table if it is missing, or add the columns an earlier release's
    table lacks (DDL: before the load's first row). ``extra``: more columns it must have."""
    wanted = {**_ADDED_COLUMNS, **(extra or {})}
    async with conn.cursor() as cur:
        have = await _columns(cur, database)
        if not have:
            try:
                await cur.execute(
                    f"CREATE TABLE {table(database)} ("
                    "load_key VARCHAR(512) NOT NULL PRIMARY KEY, target VARCHAR(512) NOT NULL, "
                    "rows_loaded BIGINT NOT NULL DEFAULT 0, "
                    "loaded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, "
                    + ", ".join(f"{name} {ddl}" for name, ddl in wanted.items())
                    + ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
                return
            except pymysql.err.OperationalError as exc:
                if not (exc.args and exc.args[0] == _TABLE_EXISTS):  # a racing load made it
                    raise
            have = await _columns(cur, database)
        for name, ddl in wanted.items():
            if name not in have:
                await _add_column(cur, database, name, ddl)


async def claim(conn: aiomysql.Connection, database: str | None, key: str,
                target: str) -> bool:
    """Take ``key`` in the current transaction; False when a committed load already has it."""
    async with conn.cursor() as cur:
        try:
            await cur.execute(f"INSERT INTO {table(database)} (load_key, target, finished) "
                              "VALUES (%s, %s, 1)", (key, target))
        except pymysql.err.IntegrityError as exc:
            if not (exc.args and exc.args[0] == _DUPLICATE):
                raise
        else:
            return True
        # a fenced load that never finished leaves its key row registered, not finished
        await cur.execute(f"SELECT finished FROM {table(database)} WHERE load_key = %s "
                          "FOR UPDATE", (key,))
        row = await cur.fetchone()
    return row is None or not row[0]


async def claim_fenced(conn: aiomysql.Connection, database: str | None, key: str,
                       target: str, token: int) -> bool:
    """Take ``key`` under fencing token ``token`` (see the module's steps 1 and 2); commits
    the registration. False when a load already finished under the key."""
    await _lock_key(conn, database, key, token)
    async with conn.cursor() as cur:
        await cur.execute(
            f"INSERT INTO {table(database)} (load_key, target, finished, fence) "
            "VALUES (%s, %s, 0, %s) ON DUPLICATE KEY UPDATE "
            "fence = IF(COALESCE(fence, 0) <= %s, %s, fence)", (key, target, token, token, token))
        await cur.execute(f"SELECT fence, finished FROM {table(database)} WHERE load_key = %s",
                          (key,))
        row = await cur.fetchone()
    await conn.commit()
    held, finished = row
    if held != token:
        raise FencedOut(f"the load of {key} is done under a newer lease than {token}: this "
                        "worker's lease lapsed; not loading")
    return not finished


async def record(conn: aiomysql.Connection, database: str | None, key: str,
                 rows: int, token: int | None = None) -> None:
    """Mark ``key`` finished with the rows loaded under it (same transaction as the rows);
    under a fence, only while the key row still holds ``token`` (the module's step 3)."""
    async with conn.cursor() as cur:
        if token is not None:
            await cur.execute(f"SELECT fence FROM {table(database)} WHERE load_key = %s "
                              "FOR UPDATE", (key,))
            row = await cur.fetchone()
            held = row[0] if row else None
            if held != token:
                raise FencedOut(f"the load of {key} is now done under lease version {held}, "
                                f"not {token}: this worker's lease lapsed; not committed")
        await cur.execute(f"UPDATE {table(database)} SET rows_loaded = %s, finished = 1 "
                          "WHERE load_key = %s", (rows, key))


def _lock_name(database: str, key: str) -> str:
    """A named lock is server-wide: the name hashes the database too (64 characters at most)."""
    return "headrace:" + hashlib.sha256(f"{database}\0{key}".encode()).hexdigest()[:40]


async def _lock_key(conn: aiomysql.Connection, database: str | None, key: str,
                    token: int) -> None:
    """The key's named lock (held until the connection closes); a stale holder's session is
    ended after :data:`STALE_LOCK_WAIT` (step 1)."""
    async with conn.cursor() as cur:
        await cur.execute("SELECT COALESCE(%s, DATABASE())", (database,))
        (schema,) = await cur.fetchone()
        name = _lock_name(str(schema), key)
        waited = 0.0
        while True:
            await cur.execute("SELECT GET_LOCK(%s, 0)", (name,))
            (got,) = await cur.fetchone()
            if got == 1:
                return
            if waited >= STALE_LOCK_WAIT:
                await _end_stale_holder(conn, cur, database, key, name, token)
                waited = 0.0
            await anyio.sleep(0.2)
            waited += 0.2


async def _end_stale_holder(conn: aiomysql.Connection, cur: Any, database: str | None,
                            key: str, name: str, token: int) -> None:
    await conn.commit()  # a fresh snapshot: the token the last holder registered
    await cur.execute(f"SELECT fence FROM {table(database)} WHERE load_key = %s", (key,))
    row = await cur.fetchone()
    if row is not None and row[0] is not None and int(row[0]) > token:
        raise FencedOut(f"the load of {key} is done under a newer lease than {token}: this "
                        "worker's lease lapsed; not loading")
    await cur.execute("SELECT IS_USED_LOCK(%s)", (name,))
    (holder,) = await cur.fetchone()
    if holder is None:
        return
    log.warning("load %s: ending MySQL session %s, a stale holder of its lock (this load "
                "holds lease version %d)", key, holder, token)
    try:
        await cur.execute(f"KILL CONNECTION {int(holder)}")
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] == _NOT_OWNER:
            raise TransientFault(
                f"the load of {key} waits for MySQL session {holder}, which holds its lock "
                "(a worker whose lease lapsed), and this user may not end it: load with the "
                "same user, or grant CONNECTION ADMIN") from exc
        raise


async def prepare_watermark(conn: aiomysql.Connection, database: str | None) -> None:
    """The checkpoint table with its ``watermark`` column (DDL: before the load's first
    row, as :func:`prepare`; MySQL commits around DDL)."""
    await prepare(conn, database, {"watermark": "LONGTEXT"})


async def save_watermark(conn: aiomysql.Connection, database: str | None, key: str,
                         target: str, state: str) -> None:
    """An incremental copy's state under ``key``, in the load's transaction."""
    async with conn.cursor() as cur:
        await cur.execute(
            f"INSERT INTO {table(database)} (load_key, target, watermark) VALUES (%s, %s, %s) "
            "ON DUPLICATE KEY UPDATE watermark = VALUES(watermark), target = VALUES(target), "
            "loaded_at = CURRENT_TIMESTAMP", (key, target, state))


async def read_watermark(conn: Any, database: str | None, key: str) -> str | None:
    async with conn.cursor() as cur:
        await cur.execute("SELECT 1 FROM information_schema.columns WHERE table_name = %s "
                          "AND column_name = 'watermark' AND table_schema = "
                          "COALESCE(%s, DATABASE())", (CHECKPOINTS, database))
        if not await cur.fetchone():
            return None
        await cur.execute(f"SELECT watermark FROM {table(database)} WHERE load_key = %s",
                          (key,))
        row = await cur.fetchone()
    return None if row is None or row[0] is None else str(row[0])
