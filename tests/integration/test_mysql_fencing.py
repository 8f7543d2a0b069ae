"""MySQL loads under a worker's fencing token (issue 14), against a real MariaDB: a holder whose
token was superseded commits nothing, a newer holder ends a paused holder's session and loads
once, an older token is refused without disturbing the current holder, and a checkpoint table
made by an earlier release gains the fence columns in place."""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
import pymysql
import pytest

from connectors.base import OUTPUT_FENCE, FencedOut, OutputFence
from connectors.copy import copy
from connectors.errors import ConnectionLost
from connectors.mysql import MySqlEndpoint, MySqlSink
from connectors.testing import MemorySource
from tests.integration.sql_kit import IDS, csv_bytes
from tests.integration.test_mysql import NULL_WORD_CSV, run

pytestmark = pytest.mark.anyio

KEY = "df-1/@Load_1/0"
ROWS = [(i, f"n{i}") for i in range(50)]


def source(lane: str, gate: anyio.Event | None = None) -> MemorySource:
    """50 rows, held after the second item when ``gate`` is given."""
    extra: dict[str, Any] = ({"data": csv_bytes(50), "fmt": NULL_WORD_CSV, "chunk_size": 200}
                             if lane == "bytes" else {"batch_rows": 10})
    return MemorySource(IDS, ROWS, gate=gate, gate_after=2, **extra)


async def fenced_copy(dsn: str, src: MemorySource, token: int | None) -> None:
    sink = MySqlSink(MySqlEndpoint.from_url(f"{dsn}?table=t").model_copy(
        update={"checkpoint_key": KEY}))
    fence = OutputFence(token, contextlib.nullcontext) if token is not None else None
    var = OUTPUT_FENCE.set(fence)
    try:
        await copy(src, sink)
    finally:
        OUTPUT_FENCE.reset(var)


def checkpoint(dsn: str) -> list[tuple[Any, ...]]:
    """The key's (fence, finished), [] before the load made the table or the row."""
    if not run(dsn, "SHOW TABLES LIKE 'headrace_checkpoints'"):
        return []
    return run(dsn, "SELECT fence, finished FROM headrace_checkpoints WHERE load_key = %s",
               (KEY,))


async def registered(dsn: str, token: int, held: MemorySource) -> None:
    """Wait until the load held at its gate has registered ``token`` (it holds the key's lock
    from before that, and streams its rows in the transaction after)."""
    with anyio.fail_after(30):
        await held.at_gate.wait()
        while checkpoint(dsn) != [(token, 0)]:  # noqa: ASYNC110 (polling the server)
            await anyio.sleep(0.05)


async def failing(failure: list[BaseException], dsn: str, src: MemorySource,
                  token: int) -> None:
    """A fenced copy in the background: its error is kept in ``failure``."""
    try:
        await fenced_copy(dsn, src, token)
    except Exception as exc:
        failure.append(exc)


@pytest.fixture
def table(mysql_database: str) -> str:
    run(mysql_database, "CREATE TABLE t (id bigint, name text)")
    return mysql_database


@pytest.mark.parametrize("lane", ["bytes", "rows"])
async def test_a_holder_whose_token_was_superseded_commits_nothing(table: str,
                                                                   lane: str) -> None:
    """The load registered token 1 and is streaming; token 2 is registered meanwhile (as a
    new holder does): the load's final check refuses its commit."""
    gate = anyio.Event()
    stale = source(lane, gate)
    failure: list[BaseException] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(failing, failure, table, stale, 1)
        await registered(table, 1, stale)  # before any row
        run(table, "UPDATE headrace_checkpoints SET fence = 2 WHERE load_key = %s", (KEY,))
        gate.set()
    [error] = failure
    assert isinstance(error, FencedOut) and "lease version 2, not 1" in str(error), error
    assert run(table, "SELECT count(*) FROM t") == [(0,)]
    assert checkpoint(table) == [(2, 0)]


@pytest.mark.parametrize("lane", ["bytes", "rows"])
async def test_a_newer_holder_ends_a_paused_holders_session_and_loads_once(
        table: str, lane: str) -> None:
    """Token 1's load is held mid-stream (its transaction open, its lock held, as a paused
    worker's): token 2's load ends that session, loads every row and finishes; the paused
    load, resumed, commits nothing."""
    gate = anyio.Event()
    paused = source(lane, gate)
    failure: list[BaseException] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(failing, failure, table, paused, 1)
        await registered(table, 1, paused)
        with anyio.fail_after(60):
            await fenced_copy(table, source(lane), 2)
        assert run(table, "SELECT count(*), count(DISTINCT id) FROM t") == [(50, 50)]
        gate.set()
    [error] = failure  # its connection was ended under it
    assert isinstance(error, ConnectionLost), error
    assert run(table, "SELECT count(*), count(DISTINCT id) FROM t") == [(50, 50)]
    assert checkpoint(table) == [(2, 1)]


async def test_an_older_token_is_refused_and_leaves_the_holder_alone(table: str) -> None:
    """While token 2 loads, a load under token 1 (a holder whose lease lapsed, resumed) waits
    for the lock, finds the newer token and stops without ending the holder's session; after
    the holder finished, token 1 is still refused."""
    gate = anyio.Event()
    holder = source("rows", gate)
    async with anyio.create_task_group() as tg:
        tg.start_soon(fenced_copy, table, holder, 2)
        await registered(table, 2, holder)
        with pytest.raises(FencedOut, match="newer lease than 1"):
            await fenced_copy(table, source("rows"), 1)
        gate.set()
    assert run(table, "SELECT count(*), count(DISTINCT id) FROM t") == [(50, 50)]
    with pytest.raises(FencedOut, match="newer lease than 1"):
        await fenced_copy(table, source("rows"), 1)
    assert run(table, "SELECT count(*) FROM t") == [(50,)]
    assert checkpoint(table) == [(2, 1)]


async def test_a_checkpoint_table_from_an_earlier_release_gains_the_fence(table: str) -> None:
    """The table as earlier releases made it (no ``fence``, no ``finished``), holding a load's
    key: the columns are added in place, the old row counts as a finished load (nothing is
    loaded again, with or without a fence), and a new key loads."""
    run(table, "CREATE TABLE headrace_checkpoints (load_key VARCHAR(512) NOT NULL PRIMARY KEY, "
               "target VARCHAR(512) NOT NULL, rows_loaded BIGINT NOT NULL DEFAULT 0, "
               "loaded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB")
    run(table, "INSERT INTO headrace_checkpoints (load_key, target, rows_loaded) "
               "VALUES (%s, 't', 50)", (KEY,))
    await fenced_copy(table, source("rows"), None)
    await fenced_copy(table, source("bytes"), 3)
    assert run(table, "SELECT count(*) FROM t") == [(0,)]
    assert checkpoint(table) == [(3, 1)]
    columns = {r[0] for r in run(table, "SELECT column_name FROM information_schema.columns "
                                        "WHERE table_name = 'headrace_checkpoints' AND "
                                        "table_schema = DATABASE()")}
    assert {"fence", "finished"} <= columns
    with pytest.raises(pymysql.err.IntegrityError):  # still one row per key
        run(table, "INSERT INTO headrace_checkpoints (load_key, target) VALUES (%s, 't')",
            (KEY,))
