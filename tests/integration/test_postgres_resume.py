"""Resumable PostgreSQL loads (RELIABILITY cases 1 and 2): batches + checkpoint + swap.

Checker: source rows have ids 0..N-1; after the resumed run the target holds each id exactly
once and nothing else, and no staging table, open transaction or lock is left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest

from connectors.copy import copy
from connectors.postgres import PostgresEndpoint, PostgresSink, staging_name
from connectors.testing import MemorySource
from tests.integration.sql_kit import IDS

pytestmark = pytest.mark.anyio

N = 1000
ROWS = [(i, f"name {i}") for i in range(N)]
REPO = Path(__file__).resolve().parents[2]


async def fetch(dsn: str, statement: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(statement, *args)]
    finally:
        await conn.close()


async def rows_done(dsn: str, key: str) -> int:
    if not (await fetch(dsn, "SELECT to_regclass('headrace_checkpoints') IS NOT NULL"))[0][0]:
        return 0
    got = await fetch(dsn, "SELECT rows_done FROM headrace_checkpoints WHERE key = $1", key)
    return got[0][0] if got else 0


async def wait_for_rows_done(dsn: str, key: str, at_least: int) -> int:
    """Poll the checkpoint (written by another connection or process) for up to 30 s."""
    for _ in range(600):
        done = await rows_done(dsn, key)
        if done >= at_least:
            return done
        await anyio.sleep(0.05)
    raise AssertionError(f"checkpoint stayed at {done} rows, expected {at_least}")


def sink_for(dsn: str, key: str) -> Any:
    return PostgresSink(PostgresEndpoint.from_url(f"{dsn}?table=t").model_copy(
        update={"checkpoint_key": key, "batch_rows": 100}))


async def check_exactly_once(dsn: str, key: str) -> None:
    ids = Counter(r[0] for r in await fetch(dsn, "SELECT id FROM t"))
    assert set(range(N)) - set(ids) == set()  # lost
    assert {i for i, c in ids.items() if c > 1} == set()  # duplicated
    assert set(ids) - set(range(N)) == set()  # unexpected
    assert await fetch(dsn, "SELECT to_regclass($1)", staging_name(key)) == [(None,)]
    assert await fetch(dsn, "SELECT rows_done, finished FROM headrace_checkpoints "
                            "WHERE key = $1", key) == [(N, True)]
    assert await fetch(dsn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                            "database = (SELECT oid FROM pg_database "
                            "WHERE datname = current_database())") == [(0,)]


async def test_cancelled_after_some_batches_resumes_exactly_once(pg_database: str) -> None:
    await fetch(pg_database, "CREATE TABLE t (id bigint PRIMARY KEY, name text)")
    key = "pipeline-1/copy/2024-01-01T00:00"
    gate = anyio.Event()
    source = MemorySource(IDS, ROWS, batch_rows=50, gate=gate, gate_after=7)
    async with anyio.create_task_group() as tg:
        tg.start_soon(copy, source, sink_for(pg_database, key))
        await source.at_gate.wait()
        assert await wait_for_rows_done(pg_database, key, 300) == 300
        tg.cancel_scope.cancel()
    # nothing visible in the target; the committed batches wait in staging
    assert await fetch(pg_database, "SELECT count(*) FROM t") == [(0,)]
    assert await fetch(pg_database, f"SELECT count(*) FROM {staging_name(key)}") == [(300,)]

    result = await copy(MemorySource(IDS, ROWS, batch_rows=64), sink_for(pg_database, key))
    assert result.rows == N
    await check_exactly_once(pg_database, key)

    # ack window: the whole input offered again after the swap committed loads nothing
    await copy(MemorySource(IDS, ROWS, batch_rows=64), sink_for(pg_database, key))
    await check_exactly_once(pg_database, key)


async def test_bad_row_after_committed_batches_keeps_the_checkpoint(pg_database: str) -> None:
    await fetch(pg_database, "CREATE TABLE t (id bigint PRIMARY KEY, name text)")
    key = "pipeline-1/copy/bad"
    bad = list(ROWS)
    bad[450] = ("four hundred fifty", "x")
    with pytest.raises(Exception, match="line 451"):
        await copy(MemorySource(IDS, bad, batch_rows=50), sink_for(pg_database, key))
    assert await rows_done(pg_database, key) == 400
    assert await fetch(pg_database, "SELECT count(*) FROM t") == [(0,)]
    await copy(MemorySource(IDS, ROWS, batch_rows=50), sink_for(pg_database, key))
    await check_exactly_once(pg_database, key)


SCRIPT = textwrap.dedent("""
    import anyio, sys
    from connectors.base import Column, Schema
    from connectors.copy import copy
    from connectors.postgres import PostgresEndpoint, PostgresSink
    from connectors.testing import MemorySource

    async def main() -> None:
        dsn, key = sys.argv[1], sys.argv[2]
        schema = Schema((Column("id", "bigint"), Column("name", "text")))
        rows = [(i, f"name {i}") for i in range(1000)]
        # the gate never opens: the process loads 5 batches, then hangs until it is killed
        source = MemorySource(schema, rows, batch_rows=50, gate=anyio.Event(), gate_after=11)
        sink = PostgresSink(PostgresEndpoint.from_url(dsn + "?table=t").model_copy(
            update={"checkpoint_key": key, "batch_rows": 100}))
        await copy(source, sink)

    anyio.run(main)
""")


async def test_sigkill_mid_load_then_resume_exactly_once(pg_database: str) -> None:
    await fetch(pg_database, "CREATE TABLE t (id bigint PRIMARY KEY, name text)")
    key = "pipeline-1/copy/killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await anyio.open_process([sys.executable, "-c", SCRIPT, pg_database, key], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert await wait_for_rows_done(pg_database, key, 500) == 500
    finally:
        proc.kill()  # SIGKILL: no cleanup runs in the loading process
        with anyio.fail_after(30):
            await proc.wait()
    assert proc.returncode == -9
    assert await fetch(pg_database, "SELECT count(*) FROM t") == [(0,)]
    await copy(MemorySource(IDS, ROWS, batch_rows=77), sink_for(pg_database, key))
    await check_exactly_once(pg_database, key)
