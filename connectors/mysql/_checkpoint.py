"""Idempotent MySQL loads: a load under a ``checkpoint_key`` happens at most once.

The engine names each scheduled instance's load with a key. The sink claims the key by
inserting it into ``headrace_checkpoints`` (in the target table's database) in the **same**
transaction as the rows, so the key row commits with the data or not at all. A rerun (the
process died after the commit and before the engine recorded success) finds the key taken and
loads nothing; a second load racing for the key waits on the first's row lock and then finds
it taken or free. The table is created before any data: MySQL commits around DDL, so it must
not be created inside the load's transaction.
"""

from __future__ import annotations

from typing import Any

import aiomysql
import pymysql

from connectors.sql import quote_ident

CHECKPOINTS = "headrace_checkpoints"

#: MySQL's "Duplicate entry" and "Table already exists" errors
_DUPLICATE, _TABLE_EXISTS, _DUPLICATE_COLUMN = 1062, 1050, 1060


def table(database: str | None) -> str:
    """The checkpoint table beside the target (the connection's database when unqualified)."""
    return f"{quote_ident(database, 'mysql')}.{CHECKPOINTS}" if database else CHECKPOINTS


async def prepare(conn: aiomysql.Connection, database: str | None) -> None:
    """Create the checkpoint table if it is missing (DDL: before the load's first row)."""
    async with conn.cursor() as cur:
        await cur.execute("SELECT 1 FROM information_schema.tables WHERE table_name = %s "
                          "AND table_schema = COALESCE(%s, DATABASE())", (CHECKPOINTS, database))
        if await cur.fetchone():
            return
        try:
            await cur.execute(
                f"CREATE TABLE {table(database)} ("
                "load_key VARCHAR(512) NOT NULL PRIMARY KEY, target VARCHAR(512) NOT NULL, "
                "rows_loaded BIGINT NOT NULL DEFAULT 0, "
                "loaded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP"
                ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
        except pymysql.err.OperationalError as exc:
            if not (exc.args and exc.args[0] == _TABLE_EXISTS):  # a racing load made it
                raise


async def claim(conn: aiomysql.Connection, database: str | None, key: str,
                target: str) -> bool:
    """Take ``key`` in the current transaction; False when a committed load already has it."""
    async with conn.cursor() as cur:
        try:
            await cur.execute(f"INSERT INTO {table(database)} (load_key, target) "
                              "VALUES (%s, %s)", (key, target))
        except pymysql.err.IntegrityError as exc:
            if exc.args and exc.args[0] == _DUPLICATE:
                return False
            raise
    return True


async def record(conn: aiomysql.Connection, database: str | None, key: str,
                 rows: int) -> None:
    """Note the rows loaded under ``key`` (same transaction as the rows)."""
    async with conn.cursor() as cur:
        await cur.execute(f"UPDATE {table(database)} SET rows_loaded = %s WHERE load_key = %s",
                          (rows, key))


async def prepare_watermark(conn: aiomysql.Connection, database: str | None) -> None:
    """The checkpoint table with its ``watermark`` column (DDL: before the load's first
    row, as :func:`prepare`; MySQL commits around DDL)."""
    await prepare(conn, database)
    async with conn.cursor() as cur:
        await cur.execute("SELECT 1 FROM information_schema.columns WHERE table_name = %s "
                          "AND column_name = 'watermark' AND table_schema = "
                          "COALESCE(%s, DATABASE())", (CHECKPOINTS, database))
        if await cur.fetchone():
            return
        try:
            await cur.execute(f"ALTER TABLE {table(database)} ADD COLUMN watermark LONGTEXT")
        except pymysql.err.OperationalError as exc:
            if not (exc.args and exc.args[0] == _DUPLICATE_COLUMN):  # a racing load added it
                raise


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
