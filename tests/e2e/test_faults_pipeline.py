"""Database faults under ``headrace run``: a CopyActivity loads a CSV file into PostgreSQL or
MariaDB through a TCP fault proxy run by the test (RELIABILITY.md cases 9, 12 and 23).

Checker: the file's rows have ids 0..N-1; after the run the table (no primary key, so a
duplicate would show) holds each id exactly once and nothing else.
"""

from __future__ import annotations

import inspect
import itertools
import json
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import asyncpg
import pymysql
import pytest

from connectors.testing import FaultProxy
from engine.runtime.crashpoints import ENV
from tests.e2e.cli_kit import HEADRACE, Cli, by_object, ref, write_definition

pytestmark = pytest.mark.anyio

N = 20_000


def csv_file(path: Path) -> Path:
    path.write_bytes(b"".join(b'%d,"name %d"\n' % (i, i) for i in range(N)))
    return path


def checker(ids: list[int], n: int = N) -> None:
    seen = Counter(ids)
    assert set(range(n)) - set(seen) == set()  # lost
    assert {i for i, c in seen.items() if c > 1} == set()  # duplicated
    assert set(seen) - set(range(n)) == set()  # unexpected


def copy_pipeline(path: Path, source: Path, connection: str, user: str, password: str,
                  **retry: str) -> Path:
    """File -> CopyActivity (with ``retry`` fields) -> SqlDataNode table ``t``."""
    return write_definition(
        path,
        {"id": "Db", "name": "Db", "type": "JdbcDatabase", "connectionString": connection,
         "jdbcDriverClass": "org.postgresql.Driver", "username": user, "*password": password},
        {"id": "In", "name": "In", "type": "S3DataNode", "filePath": f"file://{source}"},
        {"id": "Out", "name": "Out", "type": "SqlDataNode", "database": ref("Db"),
         "table": "t"},
        {"id": "Load", "name": "Load", "type": "CopyActivity", "input": ref("In"),
         "output": ref("Out"), **retry})


async def run_pipeline(cli: Cli, definition: Path) -> tuple[dict[str, Any], str]:
    """``headrace run --output json`` in a subprocess (the proxy keeps serving meanwhile)."""
    result = await anyio.run_process([HEADRACE, "run", str(definition), "--output", "json"],
                                     env=cli.env(), cwd=cli.root, check=False)
    out = json.loads(result.stdout)
    return out, result.stdout.decode() + result.stderr.decode()


async def run_healing(cli: Cli, definition: Path, proxy: FaultProxy, *, connections: int,
                      what: str) -> tuple[dict[str, Any], str]:
    """:func:`run_pipeline` while ``proxy`` is healed once ``connections`` have reached it."""
    async with anyio.create_task_group() as tg:
        async def heal() -> None:
            await wait_until(lambda: proxy.connections >= connections, what)
            proxy.heal()
        tg.start_soon(heal)
        return await run_pipeline(cli, definition)


async def attempts_of(cli: Cli, out: dict[str, Any]) -> list[dict[str, Any]]:
    load = by_object(out)["Load"]
    result = await anyio.run_process(
        [HEADRACE, "describe-objects", "--pipeline-id", out["pipelineId"], "--object-ids",
         load["instanceId"], "--output", "json"], env=cli.env(), cwd=cli.root)
    return list(json.loads(result.stdout)["pipelineObjects"][0]["attemptList"])


def gap(earlier: dict[str, Any], later: dict[str, Any]) -> timedelta:
    return datetime.fromisoformat(later["startTime"]) - datetime.fromisoformat(
        earlier["endTime"])


async def wait_until(predicate: Callable[[], Any], what: str) -> None:
    """Poll ``predicate`` (a proxy counter has no event to wait on; an async predicate is
    awaited) for up to 60 s."""
    for _ in range(1200):
        result = predicate()
        if await result if inspect.isawaitable(result) else result:
            return
        await anyio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def finished_attempts(cli: Cli, out: dict[str, Any], text: str) -> list[dict[str, Any]]:
    """The attempts of ``Load``, which must have ended FINISHED."""
    assert by_object(out)["Load"]["status"] == "FINISHED", text
    return await attempts_of(cli, out)


@asynccontextmanager
async def proxied_load(tmp_path: Path, server_port: int, connection: Callable[[int], str],
                       user: str, password: str,
                       **retry: str) -> AsyncIterator[tuple[Cli, FaultProxy, Path]]:
    """The CSV file written, a fault proxy to the server and the pipeline (``retry`` fields)
    loading table ``t`` through it: ``connection(port)`` is the JDBC URL for a port."""
    cli = Cli(tmp_path)
    src = csv_file(tmp_path / "in.csv")
    async with FaultProxy("127.0.0.1", server_port) as proxy:
        yield cli, proxy, copy_pipeline(tmp_path / "p.json", src, connection(proxy.port), user,
                                        password, **retry)


Query = Callable[[str], Awaitable[list[tuple[Any, ...]]]]


async def crash_after_commit_then_rerun(cli: Cli, definition: Path,
                                        query: Query) -> dict[str, Any]:
    """Run until crash point ``copy-committed`` kills the engine (every row committed), then
    run again: that attempt is INTERRUPTED and the rerun leaves every row there once. Returns
    the rerun's output."""
    crashed = await anyio.run_process([HEADRACE, "run", str(definition), "--output", "json"],
                                      env={**cli.env(), ENV: "copy-committed"}, cwd=cli.root,
                                      check=False)
    assert crashed.returncode == -9
    assert await query("SELECT count(*) FROM t") == [(N,)]  # committed

    out, text = await run_pipeline(cli, definition)
    assert [a["status"] for a in await finished_attempts(cli, out, text)] == \
        ["INTERRUPTED", "FINISHED"]
    checker([r[0] for r in await query("SELECT id FROM t")])
    return out


def files_holding(root: Path, secret: str, *, besides: tuple[str, ...]) -> list[Path]:
    """Files below ``root`` whose bytes contain ``secret``, bar those named ``besides*``."""
    return [path for path in root.rglob("*") if path.is_file()
            and not path.name.startswith(besides)
            and secret.encode() in path.read_bytes()]


# --- PostgreSQL ----------------------------------------------------------------------------------

async def pg_sql(dsn: str, statement: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(statement)]
    finally:
        await conn.close()


def pg_connection(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    return f"jdbc:postgresql://127.0.0.1:{port}{parts.path}"


def pg_proxied_load(dsn: str, tmp_path: Path,
                    **retry: str) -> AbstractAsyncContextManager[tuple[Cli, FaultProxy, Path]]:
    """:func:`proxied_load` into the test's PostgreSQL database."""
    return proxied_load(tmp_path, urlsplit(dsn).port or 5432, partial(pg_connection, dsn),
                        "postgres", "unused", **retry)


async def test_postgres_refusing_then_back_is_retried_until_the_run_succeeds(
        pg_database: str, tmp_path: Path) -> None:
    """Case 9: connections refused for the first attempts; then the server is back."""
    await pg_sql(pg_database, "CREATE TABLE t (id bigint, name text)")
    async with pg_proxied_load(pg_database, tmp_path, maximumRetries="4",
                               retryDelay="1 seconds") as (cli, proxy, definition):
        proxy.refuse()
        out, text = await run_healing(cli, definition, proxy, connections=2,
                                      what="two refused attempts")
    attempts = await finished_attempts(cli, out, text)
    assert [a["status"] for a in attempts] == ["FAILED", "FAILED", "FINISHED"]
    assert all("postgresql" in a["error"] and "connect" in a["error"] for a in attempts[:2]), \
        [a["error"] for a in attempts]
    for earlier, later in itertools.pairwise(attempts):
        assert gap(earlier, later) >= timedelta(seconds=1)  # retryDelay
    checker([r[0] for r in await pg_sql(pg_database, "SELECT id FROM t")])


async def test_postgres_outage_longer_than_the_attempt_timeout(
        pg_database: str, tmp_path: Path) -> None:
    """Case 9: a partition (connects hang) outlasts ``attemptTimeout``: that attempt is
    TIMEDOUT, the next waits ``retryDelay`` and loads everything once the network is back."""
    await pg_sql(pg_database, "CREATE TABLE t (id bigint, name text)")
    async with pg_proxied_load(pg_database, tmp_path, maximumRetries="2",
                               retryDelay="1 seconds",
                               attemptTimeout="2 seconds") as (cli, proxy, definition):
        proxy.blackhole()
        out, text = await run_healing(cli, definition, proxy, connections=2,
                                      what="a second attempt")
    attempts = await finished_attempts(cli, out, text)
    assert [a["status"] for a in attempts] == ["TIMEDOUT", "FINISHED"]
    assert "timed out after 2 s" in attempts[0]["error"]
    assert gap(attempts[0], attempts[1]) >= timedelta(seconds=1)
    checker([r[0] for r in await pg_sql(pg_database, "SELECT id FROM t")])


async def test_postgres_connection_reset_mid_copy_is_retried_exactly_once(
        pg_database: str, tmp_path: Path) -> None:
    """Case 8 under ``headrace run``: the link is reset after 200 kB of COPY data; the server
    aborts that transaction and the next attempt, on a fresh connection, loads every row once."""
    await pg_sql(pg_database, "CREATE TABLE t (id bigint, name text)")
    async with pg_proxied_load(pg_database, tmp_path, maximumRetries="2",
                               retryDelay="1 seconds") as (cli, proxy, definition):
        proxy.reset_after(200_000, direction="up", times=1)
        out, text = await run_pipeline(cli, definition)
        assert proxy.resets == 1
    attempts = await finished_attempts(cli, out, text)
    assert [a["status"] for a in attempts] == ["FAILED", "FINISHED"]
    assert "postgresql" in attempts[0]["error"] and "connection" in attempts[0]["error"]
    checker([r[0] for r in await pg_sql(pg_database, "SELECT id FROM t")])


# --- MariaDB -------------------------------------------------------------------------------------

def my_sql(dsn: str, statement: str) -> list[tuple[Any, ...]]:
    p = urlsplit(dsn)
    conn = pymysql.connect(host=p.hostname, port=p.port, user=p.username or "root",
                           database=p.path.lstrip("/") or None, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


@pytest.fixture
def mysql_user(mysql_database: str) -> Iterator[tuple[str, str]]:
    """A user with a password and every right on the test's database."""
    db = urlsplit(mysql_database).path.lstrip("/")
    user, password = f"u{secrets.token_hex(4)}", f"pw-{secrets.token_hex(8)}"
    my_sql(mysql_database, f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
    my_sql(mysql_database, f"GRANT ALL ON `{db}`.* TO '{user}'@'%'")
    try:
        yield user, password
    finally:
        my_sql(mysql_database, f"DROP USER '{user}'@'%'")


def my_connection(dsn: str, port: int) -> str:
    return f"jdbc:mysql://127.0.0.1:{port}{urlsplit(dsn).path}"


async def test_mariadb_connection_reset_mid_load_is_retried_exactly_once(
        mysql_database: str, mysql_user: tuple[str, str], tmp_path: Path) -> None:
    """Case 12: the link to MariaDB is reset while LOAD DATA streams (as a server restart
    looks to the client): the attempt fails as transient, its transaction is gone, and the
    retried attempt loads every row once."""
    my_sql(mysql_database, "CREATE TABLE t (id bigint, name text)")
    async with proxied_load(tmp_path, urlsplit(mysql_database).port or 3306,
                            partial(my_connection, mysql_database), *mysql_user,
                            maximumRetries="2",
                            retryDelay="1 seconds") as (cli, proxy, definition):
        proxy.reset_after(200_000, direction="up", times=1)
        out, text = await run_pipeline(cli, definition)
        assert proxy.resets == 1
    attempts = await finished_attempts(cli, out, text)
    assert [a["status"] for a in attempts] == ["FAILED", "FINISHED"]
    assert "mysql" in attempts[0]["error"]
    checker([r[0] for r in my_sql(mysql_database, "SELECT id FROM t")])


async def test_mariadb_silent_server_fails_the_attempt_in_bounded_time_then_retries(
        mysql_database: str, mysql_user: tuple[str, str], tmp_path: Path) -> None:
    """Issue 10 (waits without bounds): the proxy takes the connection and says nothing (the
    drivers waited for the greeting forever). The database's ``jdbcProperties`` bound it
    (Connector/J's ``connectTimeout``, milliseconds): the attempt fails as transient, naming
    the endpoint, the phase and the seconds (no password), and the retry, with the server
    back, loads every row once."""
    my_sql(mysql_database, "CREATE TABLE t (id bigint, name text)")
    user, password = mysql_user
    async with proxied_load(tmp_path, urlsplit(mysql_database).port or 3306,
                            partial(my_connection, mysql_database), user, password,
                            maximumRetries="1",
                            retryDelay="1 seconds") as (cli, proxy, definition):
        document = json.loads(definition.read_text())
        for obj in document["objects"]:
            if obj["id"] == "Db":
                obj["jdbcProperties"] = ["connectTimeout=2000", "socketTimeout=2000"]
        definition.write_text(json.dumps(document))
        proxy.blackhole()
        out, text = await run_healing(cli, definition, proxy, connections=2,
                                      what="a second attempt")
    attempts = await finished_attempts(cli, out, text)
    assert [a["status"] for a in attempts] == ["FAILED", "FINISHED"]
    error = attempts[0]["error"]
    assert f"127.0.0.1:{proxy.port}" in error and "phase greeting" in error, error
    assert "connect_timeout=2" in error and password not in error
    assert (datetime.fromisoformat(attempts[0]["endTime"])
            - datetime.fromisoformat(attempts[0]["startTime"])) < timedelta(seconds=10)
    checker([r[0] for r in my_sql(mysql_database, "SELECT id FROM t")])


# --- bad credentials -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
async def test_refused_credentials_fail_fast_without_retries(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Case 23: MariaDB refuses a wrong password (1045), PostgreSQL an unknown role (28000;
    the test server trusts every known role, so a wrong password alone is not refused)."""
    wrong = f"wrong-{secrets.token_hex(8)}"
    if kind == "mysql":
        dsn = request.getfixturevalue("mysql_database")
        user, _ = request.getfixturevalue("mysql_user")
        connection = my_connection(dsn, urlsplit(dsn).port or 3306)
        my_sql(dsn, "CREATE TABLE t (id bigint, name text)")
    else:
        dsn = request.getfixturevalue("pg_database")
        user = f"nobody_{secrets.token_hex(4)}"
        connection = pg_connection(dsn, urlsplit(dsn).port or 5432)
        await pg_sql(dsn, "CREATE TABLE t (id bigint, name text)")
    cli = Cli(tmp_path)
    definition = copy_pipeline(tmp_path / "p.json", csv_file(tmp_path / "in.csv"), connection,
                               user, wrong, maximumRetries="3", retryDelay="1 seconds")
    out, text = await run_pipeline(cli, definition)
    load = by_object(out)["Load"]
    assert load["status"] == "FAILED" and load["attempts"] == 1, text  # terminal: no retry
    attempts = await attempts_of(cli, out)
    assert [a["status"] for a in attempts] == ["FAILED"]
    error = attempts[0]["error"]
    assert kind in error and "connect" in error, error
    # the password is nowhere: not in the output, the error, nor any log file
    assert wrong not in text and wrong not in json.dumps(attempts)
    # (the definition file and the store hold the definition, password included)
    assert files_holding(tmp_path, wrong, besides=("p.json", "store.db")) == []


# --- kill -9 mid copy ----------------------------------------------------------------------------

async def test_kill_9_mid_postgres_to_postgres_copy_then_rerun_loads_exactly_once(
        pg_database: str, tmp_path: Path) -> None:
    """Case 1 under ``headrace run``: the engine is killed while a CopyActivity streams one
    table into another over a slow link (the bytes lane: one COPY in one transaction). Nothing
    of it is visible; the same command again marks that attempt INTERRUPTED and loads every
    row once, leaving no session, lock or staging table behind. (Resuming from a committed
    batch, on the rows lane, is shown by tests/integration/test_postgres_resume.py.)"""
    await pg_sql(pg_database, "CREATE TABLE src AS SELECT g AS id, 'name ' || g AS name "
                              f"FROM generate_series(0, {N - 1}) g")
    await pg_sql(pg_database, "CREATE TABLE t (id bigint, name text)")
    cli = Cli(tmp_path)
    port = urlsplit(pg_database).port or 5432
    async with FaultProxy("127.0.0.1", port) as proxy:
        definition = write_definition(
            tmp_path / "p.json",
            {"id": "Direct", "name": "Direct", "type": "JdbcDatabase",
             "connectionString": pg_connection(pg_database, port),
             "username": "postgres", "*password": "unused"},
            {"id": "Slow", "name": "Slow", "type": "JdbcDatabase",
             "connectionString": pg_connection(pg_database, proxy.port),
             "username": "postgres", "*password": "unused"},
            {"id": "In", "name": "In", "type": "SqlDataNode", "database": ref("Direct"),
             "table": "src"},
            {"id": "Out", "name": "Out", "type": "SqlDataNode", "database": ref("Slow"),
             "table": "t"},
            {"id": "Load", "name": "Load", "type": "CopyActivity", "input": ref("In"),
             "output": ref("Out"), "maximumRetries": "1", "retryDelay": "1 seconds"})
        proxy.bandwidth(128 * 1024, direction="up")
        proc = await anyio.open_process([HEADRACE, "run", str(definition), "--output", "json"],
                                        env=cli.env(), cwd=cli.root)
        try:
            await wait_until(lambda: proxy.bytes_up > 100_000, "the load under way")
        finally:
            proc.kill()
            with anyio.fail_after(30):
                await proc.wait()
        assert proc.returncode == -9
        # nothing of the killed load is visible, and the server ends its session
        assert await pg_sql(pg_database, "SELECT count(*) FROM t") == [(0,)]
        await wait_until(lambda: no_other_session(pg_database), "the session to end")
        assert not await rows_done(pg_database, 1)
        proxy.heal()
        out, text = await run_pipeline(cli, definition)
    assert [a["status"] for a in await finished_attempts(cli, out, text)] == \
        ["INTERRUPTED", "FINISHED"]
    checker([r[0] for r in await pg_sql(pg_database, "SELECT id FROM t")])
    assert await pg_sql(pg_database, "SELECT rows_done, finished FROM headrace_checkpoints"
                        ) == [(N, True)]
    assert await pg_sql(pg_database, "SELECT count(*) FROM pg_locks WHERE locktype = "
                                     "'advisory' AND database = (SELECT oid FROM pg_database "
                                     "WHERE datname = current_database())") == [(0,)]
    assert await pg_sql(pg_database, "SELECT count(*) FROM pg_tables "
                                     "WHERE tablename LIKE 'headrace_stage_%'") == [(0,)]


async def rows_done(dsn: str, at_least: int) -> bool:
    """True once the (one) load checkpoint has ``at_least`` rows committed."""
    if await pg_sql(dsn, "SELECT to_regclass('headrace_checkpoints')") == [(None,)]:
        return False
    done = await pg_sql(dsn, "SELECT rows_done FROM headrace_checkpoints")
    return bool(done) and done[0][0] >= at_least


async def no_other_session(dsn: str) -> bool:
    """True once no other session is connected to the test's database."""
    rows = await pg_sql(dsn, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                             "current_database() AND pid <> pg_backend_pid()")
    return rows == [(0,)]


async def test_killed_after_the_commit_before_success_is_recorded_loads_nothing_again(
        pg_database: str, tmp_path: Path) -> None:
    """Case 2, the ack window: the process dies (crash point ``copy-committed``) after the
    load committed and before the engine recorded success. The rerun offers the whole input
    again; the sink sees the finished checkpoint and loads nothing, so every row is there once."""
    await pg_sql(pg_database, "CREATE TABLE t (id bigint, name text)")
    cli = Cli(tmp_path)
    port = urlsplit(pg_database).port or 5432
    definition = copy_pipeline(tmp_path / "p.json", csv_file(tmp_path / "in.csv"),
                               pg_connection(pg_database, port), "postgres", "unused",
                               maximumRetries="2", retryDelay="1 seconds")
    await crash_after_commit_then_rerun(cli, definition, partial(pg_sql, pg_database))


async def test_mariadb_load_killed_after_its_commit_loads_nothing_again(
        mysql_database: str, mysql_user: tuple[str, str], tmp_path: Path) -> None:
    """Case 2 for MariaDB: the process dies after LOAD DATA committed and before the engine
    recorded success; the rerun finds the instance's key in ``headrace_checkpoints``
    (committed with the rows) and loads nothing. A RERUN of the instance is a new key and
    loads again."""
    my_sql(mysql_database, "CREATE TABLE t (id bigint, name text)")
    cli = Cli(tmp_path)
    port = urlsplit(mysql_database).port or 3306
    definition = copy_pipeline(tmp_path / "p.json", csv_file(tmp_path / "in.csv"),
                               my_connection(mysql_database, port), *mysql_user,
                               maximumRetries="2", retryDelay="1 seconds")

    async def query(statement: str) -> list[tuple[Any, ...]]:
        return my_sql(mysql_database, statement)

    out = await crash_after_commit_then_rerun(cli, definition, query)
    [(key, rows)] = my_sql(mysql_database,
                           "SELECT load_key, rows_loaded FROM headrace_checkpoints")
    assert key.endswith(by_object(out)["Load"]["instanceId"] + "/0") and rows == N


async def test_a_pipeline_run_afresh_on_a_new_store_loads_again(
        mysql_database: str, mysql_user: tuple[str, str], tmp_path: Path) -> None:
    """The load key names the instance's run in one store: the same definition run on a
    fresh store (a new activation) is a new run and loads its rows, rather than finding the
    earlier store's key and silently loading nothing."""
    my_sql(mysql_database, "CREATE TABLE t (id bigint, name text)")
    port = urlsplit(mysql_database).port or 3306
    definition = copy_pipeline(tmp_path / "p.json", csv_file(tmp_path / "in.csv"),
                               my_connection(mysql_database, port), *mysql_user)
    for store in ("first", "second"):
        (tmp_path / store).mkdir()
        out, text = await run_pipeline(Cli(tmp_path / store), definition)
        assert by_object(out)["Load"]["status"] == "FINISHED", text
    assert my_sql(mysql_database, "SELECT count(*), count(DISTINCT id) FROM t") == [(2 * N, N)]
    assert len(my_sql(mysql_database, "SELECT load_key FROM headrace_checkpoints")) == 2
