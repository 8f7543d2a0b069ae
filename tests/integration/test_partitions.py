"""Partitioned reads (issue 17): a PostgreSQL or MySQL table read as N ranges at once gives
exactly the rows one stream gives. The checker compares the ids read back against the
table's: nothing lost, nothing duplicated, nothing unexpected, for keys with gaps, no key
(PostgreSQL: ctid page ranges), a composite key, an empty table, and a table written to
during the copy (one snapshot: rows committed after the readers started do not appear, rows
deleted or changed then still appear as they were).
"""

from __future__ import annotations

import collections
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import asyncpg
import pymysql
import pytest

from connectors.base import CSV, EndpointOptions, Progress
from connectors.copy import CopyOptions, copy
from connectors.errors import BadDataError
from connectors.urls import open_sink, open_source

pytestmark = pytest.mark.anyio


def checker(got: list[Any], expected: list[Any]) -> None:
    """Nothing lost, nothing duplicated, nothing unexpected (each named when it fails)."""
    counts = collections.Counter(got)
    duplicated = sorted(k for k, c in counts.items() if c > 1)
    lost = sorted(set(expected) - set(counts))
    unexpected = sorted(set(counts) - set(expected))
    assert (lost[:10], duplicated[:10], unexpected[:10]) == ([], [], [])
    assert len(got) == len(expected)


def first_columns(path: Path, width: int = 1) -> list[Any]:
    out = []
    for line in path.read_text().splitlines():
        fields = line.replace('"', "").split(",")
        out.append(fields[0] if width == 1 else tuple(fields[:width]))
    return out


async def copy_out(url: str, dest: Path, partitions: int, **copy_kw: Any) -> Progress:
    progress = Progress()
    await copy(open_source(url, EndpointOptions(partitions=partitions, **copy_kw.pop(
        "endpoint", {}))), open_sink(str(dest)), CopyOptions(**copy_kw), progress=progress)
    return progress


# --- PostgreSQL -------------------------------------------------------------------------------


async def pg(dsn: str, *statements: str) -> list[Any]:
    conn = await asyncpg.connect(dsn)
    try:
        result: list[Any] = []
        for sql in statements:
            result = await conn.fetch(sql)
        return result
    finally:
        await conn.close()


GAPPED = ("INSERT INTO t SELECT i, 'row ' || i FROM generate_series(1, {n}) i "
          "UNION ALL SELECT 1000000000 + i, 'far ' || i FROM generate_series(1, {n}) i "
          "UNION ALL SELECT 9000000000000 + i * 7919, 'very far' FROM generate_series(1, 50) i")


@pytest.mark.parametrize("rows", [1500, 40_000], ids=["all-keys", "sampled"])
async def test_pg_keys_with_gaps(pg_database: str, tmp_path: Path, rows: int) -> None:
    await pg(pg_database, "CREATE TABLE t (id bigint PRIMARY KEY, v text)",
             GAPPED.format(n=rows), "ANALYZE t")
    expected = [str(r[0]) for r in await pg(pg_database, "SELECT id FROM t")]
    for n in (1, 2, 8):
        progress = await copy_out(f"{pg_database}?table=t", tmp_path / f"{n}.csv", n)
        checker(first_columns(tmp_path / f"{n}.csv"), expected)
        if n > 1:
            assert len(progress.parts) > 1
            assert sum(p.rows for p in progress.parts) == len(expected)
            assert all(p.rows for p in progress.parts) if rows > 10_000 else True


async def test_pg_without_key_reads_page_ranges(pg_database: str, tmp_path: Path) -> None:
    """ctid ranges: holes left by deletes and rows moved by updates are still read once."""
    await pg(pg_database, "CREATE TABLE t (id int, v text)",
             "INSERT INTO t SELECT i, repeat('x', 50) FROM generate_series(1, 30000) i",
             "DELETE FROM t WHERE id % 7 = 0",
             "UPDATE t SET v = 'moved' WHERE id % 11 = 0")
    expected = [str(r[0]) for r in await pg(pg_database, "SELECT id FROM t")]
    progress = await copy_out(f"{pg_database}?table=t", tmp_path / "out.csv", 4)
    checker(first_columns(tmp_path / "out.csv"), expected)
    assert len(progress.parts) == 4 and all(p.rows for p in progress.parts)


async def test_pg_composite_key(pg_database: str, tmp_path: Path) -> None:
    await pg(pg_database, "CREATE TABLE t (region text, n int, v text, PRIMARY KEY (region, n))",
             "INSERT INTO t SELECT r, i, 'v' FROM unnest(ARRAY['eu', 'us', 'ap', 'x y']) r, "
             "generate_series(1, 2000) i")
    expected = [(r[0], str(r[1])) for r in await pg(pg_database, "SELECT region, n FROM t")]
    progress = await copy_out(f"{pg_database}?table=t", tmp_path / "out.csv", 5)
    checker(first_columns(tmp_path / "out.csv", 2), expected)
    assert len(progress.parts) == 5


async def test_pg_empty_table_and_rows_lane(pg_database: str, tmp_path: Path) -> None:
    await pg(pg_database, "CREATE TABLE e (id int PRIMARY KEY)",
             "CREATE TABLE t (id int PRIMARY KEY, v text)",
             "INSERT INTO t SELECT i, 'v' FROM generate_series(1, 5000) i")
    await copy_out(f"{pg_database}?table=e", tmp_path / "e.csv", 4)
    assert (tmp_path / "e.csv").read_text() == ""
    await copy_out(f"{pg_database}?table=t", tmp_path / "t.jsonl", 3)  # rows lane: JSON lines
    ids = [line.split(",")[0].split(":")[1] for line in
           (tmp_path / "t.jsonl").read_text().splitlines()]
    checker(ids, [str(i) for i in range(1, 5001)])


async def _during_copy(start: Callable[[], Awaitable[None]],
                       readers_in: Callable[[], Awaitable[int]], n: int,
                       change: Callable[[], Awaitable[None]], fifo: Path) -> bytes:
    """Run ``start`` (a copy into ``fifo``), wait until ``n`` readers are reading, ``change``
    the table, then drain the FIFO: the copy cannot end before its output is read."""
    data = bytearray()

    async def drain() -> None:
        def read_all() -> None:
            with open(fifo, "rb") as fh:
                while chunk := fh.read(1 << 16):
                    data.extend(chunk)
        await anyio.to_thread.run_sync(read_all)

    async with anyio.create_task_group() as tg:
        tg.start_soon(start)
        try:
            with anyio.fail_after(60):
                while await readers_in() < n:  # noqa: ASYNC110 (polling the server, not us)
                    await anyio.sleep(0.02)
            await change()
        except BaseException:
            # the copy may wait to open the FIFO for writing: let it, so it can end
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
            raise
        tg.start_soon(drain)
    return bytes(data)


async def test_pg_table_written_during_the_copy(pg_database: str, tmp_path: Path) -> None:
    await pg(pg_database, "CREATE TABLE t (id int PRIMARY KEY, v text)",
             "INSERT INTO t SELECT i, repeat('p', 100) FROM generate_series(1, 100000) i")
    before = [str(i) for i in range(1, 100001)]
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)

    async def start() -> None:
        # small chunks and one item per link: the readers block long before the table ends
        await copy_out(f"{pg_database}?table=t", fifo, 4, stream_depth=1,
                       endpoint={"chunk_size": 64 * 1024})

    async def readers_in() -> int:
        # sessions of the copy holding a snapshot: the coordinator and readers that
        # imported it; a reader that starts after the change still gets the old snapshot
        rows = await pg(pg_database, "SELECT count(*) FROM pg_stat_activity WHERE "
                        "application_name = 'headrace' AND backend_xmin IS NOT NULL "
                        "AND datname = current_database()")
        return int(rows[0][0])

    async def change() -> None:
        await pg(pg_database,
                 "INSERT INTO t SELECT i, 'new' FROM generate_series(200001, 201000) i",
                 "DELETE FROM t WHERE id <= 500",
                 "UPDATE t SET id = id + 300000 WHERE id > 99000")

    data = await _during_copy(start, readers_in, 4, change, fifo)
    checker([line.split(",")[0] for line in data.decode().splitlines()], before)


# --- MySQL ------------------------------------------------------------------------------------


def my(dsn: str, *statements: str, many: tuple[str, list[Any]] | None = None) -> list[Any]:
    parts = urlsplit(dsn)
    conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                           user=parts.username or "root", database=parts.path.lstrip("/"),
                           autocommit=True)
    try:
        with conn.cursor() as cur:
            result: list[Any] = []
            for sql in statements:
                cur.execute(sql)
                result = list(cur.fetchall())
            if many:
                cur.executemany(*many)
            return result
    finally:
        conn.close()


async def test_mysql_keys_with_gaps_and_composite(mysql_database: str, tmp_path: Path) -> None:
    ids = [*range(1, 3001), *range(10**9, 10**9 + 3000),
           *(9 * 10**15 + i * 7919 for i in range(50))]
    my(mysql_database, "CREATE TABLE t (id bigint PRIMARY KEY, v text)",
       many=("INSERT INTO t VALUES (%s, 'v')", [(i,) for i in ids]))
    my(mysql_database, "CREATE TABLE c (region varchar(8), n int, v text, PRIMARY KEY (region, n))",
       many=("INSERT INTO c VALUES (%s, %s, 'v')",
             [(r, i) for r in ("eu", "us", "ap") for i in range(1, 1001)]))
    for n in (1, 3, 8):
        progress = await copy_out(f"{mysql_database}?table=t", tmp_path / f"t{n}.csv", n)
        checker(first_columns(tmp_path / f"t{n}.csv"), [str(i) for i in ids])
        assert len(progress.parts) == (n if n > 1 else 0)
        await copy_out(f"{mysql_database}?table=c", tmp_path / f"c{n}.csv", n)
        checker(first_columns(tmp_path / f"c{n}.csv", 2),
                [(r, str(i)) for r in ("eu", "us", "ap") for i in range(1, 1001)])


async def test_mysql_empty_and_keyless_tables(mysql_database: str, tmp_path: Path) -> None:
    my(mysql_database, "CREATE TABLE e (id int PRIMARY KEY)", "CREATE TABLE k (id int, v text)",
       many=None)
    my(mysql_database, many=("INSERT INTO k VALUES (%s, 'v')", [(i,) for i in range(2000)]))
    await copy_out(f"{mysql_database}?table=e", tmp_path / "e.csv", 4)
    assert (tmp_path / "e.csv").read_text() == ""
    progress = await copy_out(f"{mysql_database}?table=k", tmp_path / "k.csv", 4)
    checker(first_columns(tmp_path / "k.csv"), [str(i) for i in range(2000)])
    assert len(progress.parts) <= 1  # no key: one stream (MySQL has no ctid)


async def test_mysql_table_written_during_the_copy(mysql_database: str, tmp_path: Path) -> None:
    my(mysql_database, "CREATE TABLE t (id int PRIMARY KEY, v text)",
       "INSERT INTO t SELECT seq, REPEAT('m', 200) FROM seq_1_to_40000")
    before = [str(i) for i in range(1, 40001)]
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    database = urlsplit(mysql_database).path.lstrip("/")

    async def start() -> None:
        await copy_out(f"{mysql_database}?table=t", fifo, 4, stream_depth=1,
                       endpoint={"chunk_size": 64 * 1024})

    async def readers_in() -> int:
        # the copy's sessions on this database: the coordinator and the readers it started
        rows = await anyio.to_thread.run_sync(lambda: my(
            mysql_database, "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
            f"WHERE DB = '{database}' AND ID <> CONNECTION_ID()"))
        return int(rows[0][0])

    async def change() -> None:
        await anyio.to_thread.run_sync(lambda: my(
            mysql_database, "INSERT INTO t VALUES (200001, 'new'), (200002, 'new')",
            "DELETE FROM t WHERE id <= 500", "UPDATE t SET id = id + 300000 WHERE id > 39000"))

    # The coordinator and one reader connected is enough: the coordinator's LOCK TABLES READ
    # is taken before the first reader connects and held until the last one has its
    # snapshot, so the change waits for that lock and lands after every snapshot. (Counting
    # the readers' transactions in INNODB_TRX is not reliable: MariaDB need not list a
    # read-only transaction that has not read yet.)
    data = await _during_copy(start, readers_in, 2, change, fifo)
    checker([line.replace('"', "").split(",")[0] for line in data.decode().splitlines()], before)


# --- loads by N streams into a staging table, swapped in at once ------------------------------


HEADED = CSV.replace(header=True)


async def test_pg_parallel_load_is_whole_and_atomic(pg_database: str, tmp_path: Path) -> None:
    """Quoted newlines and a header survive the cut into runs; a bad record anywhere leaves
    the target as it was and no staging table behind."""
    await pg(pg_database, "CREATE TABLE t (id int PRIMARY KEY, v text)",
             "INSERT INTO t VALUES (0, 'before')")
    lines = ["id,v"] + [f'{i},"line {i}\nwith, a ""quote"""' if i % 97 == 0 else f"{i},v{i}"
                        for i in range(1, 30001)]
    good = tmp_path / "good.csv"
    good.write_text("\n".join(lines) + "\n")
    progress = Progress()
    await copy(open_source(str(good), EndpointOptions(format=HEADED)),
               open_sink(f"{pg_database}?table=t",
                         EndpointOptions(format=HEADED, partitions=4, chunk_size=64 * 1024)),
               CopyOptions(chunk_size=64 * 1024), progress=progress)
    rows = await pg(pg_database, "SELECT id, v FROM t")
    checker([r[0] for r in rows], list(range(0, 30001)))
    assert dict(rows)[97] == 'line 97\nwith, a "quote"' and progress.rows == 30000

    bad = tmp_path / "bad.csv"
    bad.write_text("id,v\n" + "".join(f"{i},v\n" for i in range(40001, 60000)) + "x,oops\n"
                   + "".join(f"{i},v\n" for i in range(60000, 70000)))
    with pytest.raises(BadDataError, match=r"invalid input syntax"):
        await copy(open_source(str(bad), EndpointOptions(format=HEADED)),
                   open_sink(f"{pg_database}?table=t",
                             EndpointOptions(format=HEADED, partitions=3)))
    assert len(await pg(pg_database, "SELECT id FROM t")) == 30001  # untouched
    assert await pg(pg_database, "SELECT relname FROM pg_class WHERE relname LIKE "
                    "'headrace_load_%'") == []


async def test_mysql_parallel_load_is_whole_and_atomic(mysql_database: str,
                                                       tmp_path: Path) -> None:
    my(mysql_database, "CREATE TABLE t (id int PRIMARY KEY, v text)",
       "INSERT INTO t VALUES (0, 'before')")
    lines = ["id,v"] + [f'{i},"line {i}\nwith, a ""quote"""' if i % 97 == 0 else f"{i},v{i}"
                        for i in range(1, 20001)]
    good = tmp_path / "good.csv"
    good.write_text("\n".join(lines) + "\n")
    progress = Progress()
    await copy(open_source(str(good), EndpointOptions(format=HEADED)),
               open_sink(f"{mysql_database}?table=t",
                         EndpointOptions(format=HEADED, partitions=4)),
               CopyOptions(chunk_size=64 * 1024), progress=progress)
    rows = my(mysql_database, "SELECT id, v FROM t")
    checker([r[0] for r in rows], list(range(0, 20001)))
    assert dict(rows)[97] == 'line 97\nwith, a "quote"' and progress.rows == 20000

    bad = tmp_path / "bad.csv"
    bad.write_text("id,v\n" + "".join(f"{i},v\n" for i in range(40001, 60000)) + "x,oops\n"
                   + "".join(f"{i},v\n" for i in range(60000, 70000)))
    with pytest.raises(BadDataError, match=r"Incorrect integer|nothing was committed"):
        await copy(open_source(str(bad), EndpointOptions(format=HEADED)),
                   open_sink(f"{mysql_database}?table=t",
                             EndpointOptions(format=HEADED, partitions=3)))
    assert len(my(mysql_database, "SELECT id FROM t")) == 20001  # untouched
    assert my(mysql_database, "SHOW TABLES LIKE 'headrace_load_%'") == []
