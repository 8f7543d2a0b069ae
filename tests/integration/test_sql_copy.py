"""Copies between PostgreSQL tables, MySQL tables and CSV bytes, through the copy engine.

Checker (RELIABILITY.md): source rows have ids 0..N-1; the destination, read back with the
plain drivers (not through the connectors), must hold every id exactly once, nothing else, and
every value as it was: NULL vs '', unicode, quotes, separators and newlines inside values,
large text, numerics, timestamps with time zones, booleans.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pymysql
import pytest

from connectors import mysql, postgres
from connectors.base import CSV, Column, EndpointOptions, Schema
from connectors.copy import copy
from connectors.testing import MemorySink, MemorySource

pytestmark = pytest.mark.anyio

N = 240
NAMES = [None, "", "plain", "ünïcødé ✓ 日本語 🚀", 'quote " inside', "comma, inside",
         "new\nline", "cr\r\nlf", "tab\tsep", "back\\slash", "NULL", "\\N", "it's", '""', " "]
BIG = "x" * 70_000 + "end"
T0 = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)

SCHEMA = Schema((Column("id", "bigint"), Column("name", "text"), Column("amount", "numeric"),
                 Column("ts", "timestamptz"), Column("flag", "boolean"), Column("note", "text")))


def source_rows(n: int = N) -> list[tuple[Any, ...]]:
    rows = []
    for i in range(n):
        rows.append((
            i,
            NAMES[i % len(NAMES)],
            None if i % 11 == 3 else Decimal(i * 137 % 100_000) / 100 - Decimal("400.00"),
            None if i % 13 == 5 else T0 + timedelta(hours=i, microseconds=i),
            None if i % 7 == 6 else bool(i % 2),
            BIG if i == 17 else f"row {i}",
        ))
    return rows


PG_DDL = ("CREATE TABLE {t} (id bigint PRIMARY KEY, name text, amount numeric(14,2), "
          "ts timestamptz, flag boolean, note text)")
MY_DDL = ("CREATE TABLE {t} (id bigint PRIMARY KEY, name longtext, amount decimal(14,2), "
          "ts datetime(6), flag boolean, note longtext) DEFAULT CHARSET=utf8mb4")


# --- direct driver access (the checker does not trust the connectors) -------------------------

async def pg_exec(dsn: str, sql: str, rows: list[tuple[Any, ...]] | None = None) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        if rows is None:
            await conn.execute(sql)
        else:
            await conn.executemany(sql, rows)
    finally:
        await conn.close()


async def pg_rows(dsn: str, table: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(
            f"SELECT id, name, amount, ts, flag, note FROM {table} ORDER BY id")]
    finally:
        await conn.close()


def my_connect(dsn: str) -> Any:
    p = urlsplit(dsn)
    return pymysql.connect(host=p.hostname, port=p.port, user=p.username or "root",
                           password=p.password or "", database=p.path.lstrip("/"),
                           charset="utf8mb4", autocommit=True,
                           init_command="SET time_zone='+00:00'")


def my_exec(dsn: str, sql: str, rows: list[tuple[Any, ...]] | None = None) -> None:
    conn = my_connect(dsn)
    try:
        with conn.cursor() as cur:
            if rows is None:
                cur.execute(sql)
            else:
                cur.executemany(sql, rows)
    finally:
        conn.close()


def my_rows(dsn: str, table: str) -> list[tuple[Any, ...]]:
    conn = my_connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT id, name, amount, ts, flag, note FROM {table} ORDER BY id")
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def normal(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """One comparable form for both databases: naive UTC timestamps, bool flags."""
    i, name, amount, ts, flag, note = row
    if isinstance(ts, datetime) and ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return (i, name, amount, ts, None if flag is None else bool(flag), note)


def check(expected: list[tuple[Any, ...]], got: list[tuple[Any, ...]]) -> None:
    ids = Counter(r[0] for r in got)
    source = {r[0] for r in expected}
    lost = source - set(ids)
    dup = {i for i, c in ids.items() if c > 1}
    unexpected = set(ids) - source
    assert (lost, dup, unexpected) == (set(), set(), set())
    want = {r[0]: normal(r) for r in expected}
    for row in got:
        assert normal(row) == want[row[0]], f"row {row[0]} differs"


# --- ends -------------------------------------------------------------------------------------

async def make_pg(dsn: str, table: str, rows: list[tuple[Any, ...]] | None) -> str:
    await pg_exec(dsn, PG_DDL.format(t=table))
    if rows:
        await pg_exec(dsn, f"INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6)", rows)
    return f"{dsn}?table={table}"


async def make_my(dsn: str, table: str, rows: list[tuple[Any, ...]] | None) -> str:
    my_exec(dsn, MY_DDL.format(t=table))
    if rows:
        my_exec(dsn, f"INSERT INTO {table} VALUES (%s, %s, %s, %s, %s, %s)",
                [normal(r) for r in rows])
    return f"{dsn}?table={table}"


def open_end(url: str, *, sink: bool) -> Any:
    module = postgres if url.startswith("postgresql") else mysql
    return (module.sink_from_url if sink else module.source_from_url)(url, EndpointOptions())


@pytest.mark.parametrize(("src_kind", "dst_kind"), [
    ("pg", "pg"), ("pg", "mysql"), ("mysql", "pg"), ("mysql", "mysql")])
async def test_table_to_table(src_kind: str, dst_kind: str, pg_database: str,
                              mysql_database: str) -> None:
    rows = source_rows()
    make = {"pg": (make_pg, pg_database), "mysql": (make_my, mysql_database)}
    src_make, src_dsn = make[src_kind]
    dst_make, dst_dsn = make[dst_kind]
    src_url = await src_make(src_dsn, "src", rows)
    dst_url = await dst_make(dst_dsn, "dst", None)
    result = await copy(open_end(src_url, sink=False), open_end(dst_url, sink=True))
    got = await pg_rows(dst_dsn, "dst") if dst_kind == "pg" else my_rows(dst_dsn, "dst")
    check(rows, got)
    assert result.rows == N


@pytest.mark.parametrize(("src_kind", "dst_kind"), [
    ("pg", "pg"), ("pg", "mysql"), ("mysql", "pg"), ("mysql", "mysql")])
async def test_create_makes_the_table_from_the_source_columns(
        src_kind: str, dst_kind: str, pg_database: str, mysql_database: str) -> None:
    rows = source_rows(50)
    src_url = await (make_pg(pg_database, "src", rows) if src_kind == "pg"
                     else make_my(mysql_database, "src", rows))
    dst_dsn = pg_database if dst_kind == "pg" else mysql_database
    module = postgres if dst_kind == "pg" else mysql
    sink = module.sink_from_url(f"{dst_dsn}?table=made", EndpointOptions(create=True))
    result = await copy(open_end(src_url, sink=False), sink)
    assert result.rows == 50
    got = await pg_rows(dst_dsn, "made") if dst_kind == "pg" else my_rows(dst_dsn, "made")
    check(rows, got)


@pytest.mark.parametrize("db", ["pg", "mysql"])
async def test_table_to_csv_bytes_and_back(db: str, pg_database: str,
                                           mysql_database: str) -> None:
    rows = source_rows()
    dsn = pg_database if db == "pg" else mysql_database
    make = make_pg if db == "pg" else make_my
    src_url = await make(dsn, "src", rows)
    out = MemorySink(CSV)
    await copy(open_end(src_url, sink=False), out)
    data = out.committed_bytes
    assert data is not None
    lines = data.decode().split("\n")
    # NULL is an unquoted empty field, '' is "" (row 0: name NULL; row 1: name '')
    assert lines[0].startswith("0,,")
    assert lines[1].startswith('1,"",')

    dst_url = await make(dsn, "dst", None)
    await copy(MemorySource(SCHEMA, data=data, fmt=CSV), open_end(dst_url, sink=True))
    got = await pg_rows(dsn, "dst") if db == "pg" else my_rows(dsn, "dst")
    check(rows, got)


async def test_csv_bytes_into_mysql_stay_bytes_and_keep_null_vs_empty(
        pg_database: str, mysql_database: str) -> None:
    """LOAD DATA cannot tell headrace CSV's NULL from ''; the sink marks NULLs on the bytes."""
    rows = source_rows(40)
    src_url = await make_pg(pg_database, "src", rows)
    out = MemorySink(CSV)
    await copy(open_end(src_url, sink=False), out)
    assert out.committed_bytes is not None
    dst_url = await make_my(mysql_database, "dst", None)
    result = await copy(MemorySource(SCHEMA, data=out.committed_bytes, fmt=CSV,
                                     chunk_size=777),  # records cut anywhere
                        open_end(dst_url, sink=True))
    assert (result.lane, result.rows) == ("bytes", 40)
    check(rows, my_rows(mysql_database, "dst"))
