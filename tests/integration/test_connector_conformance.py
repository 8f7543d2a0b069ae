"""One conformance suite, run against every connector on its real server.

Each connector is one :class:`End` fixture (at the bottom); every check below runs against
each of them:

* round trip: rows in through the sink come back the same through the source;
* an empty input makes an empty (but valid) output;
* a clogged consumer: while nobody reads, the source stops within a bounded read-ahead, and
  once the consumer resumes everything arrives;
* a copy cancelled mid-stream leaves nothing visible (or, for a sink that is idempotent by key
  rather than atomic, a rerun ends with every row exactly once);
* errors are mapped: what is missing is a terminal connector error naming it, an unreachable
  server a transient one with the driver's exception kept as the cause.

What is visible at a destination is read with the plain drivers and SDKs, never through the
connector under test. Adding a connector means adding one fixture.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pymysql
import pytest

from connectors.base import CSV, Column, EndpointOptions, Schema, Sink, Source, TextFormat
from connectors.copy import CopyOptions, copy
from connectors.dynamodb import DynamoDBSink, DynamoDBSource, DynamoDBTable, RetryPolicy
from connectors.errors import ConnectorError, TerminalError, TransientError
from connectors.local import LocalSink, LocalSource
from connectors.mysql import MySqlEndpoint, MySqlSink, MySqlSource
from connectors.postgres import PostgresEndpoint, PostgresSink, PostgresSource
from connectors.s3 import S3Sink, S3Source
from connectors.testing import (
    MemorySink,
    MemorySource,
    check_abort_leaves_nothing,
    check_clogged_sink,
    check_round_trip,
)
from tests.services import aws

pytestmark = pytest.mark.anyio

SCHEMA = Schema((Column("id", "bigint"), Column("name", "text")))
ROWS = [(i, None if i % 7 == 0 else f"name {i}, \"quoted\"") for i in range(1, 501)]
FAST_RETRY = RetryPolicy(base_delay=0.002, max_delay=0.05, max_attempts=3)


def normal(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """CSV gives text back: compare ids as numbers."""
    return (int(row[0]), row[1])


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class End:
    """One connector under test: how to reach a fresh target, and what is visible there."""

    name: str
    sink: Callable[[], Sink]
    source: Callable[[], Source]
    #: How many rows (or objects, files) are visible at the target, read without the connector.
    visible: Callable[[], Awaitable[int]]
    #: A source reading the target in small pieces, and the read-ahead it may keep while its
    #: consumer stalls (bytes for a bytes source, rows for a rows source).
    clogged_source: Callable[[], Source]
    clog_format: TextFormat | None
    read_ahead: int
    clog_rows: int
    #: A source of something that does not exist, and one of a server nobody answers at.
    missing: Callable[[], Source]
    unreachable: Callable[[], Source] | None
    #: False for a sink that is idempotent by key instead of atomic (DynamoDB).
    atomic: bool = True


# --- the checks --------------------------------------------------------------------------------


async def test_round_trip(end: End) -> None:
    await check_round_trip(end.sink, end.source, ROWS, SCHEMA, ordered=False, normalize=normal)


async def test_empty_input_makes_an_empty_output(end: End) -> None:
    result = await copy(MemorySource(SCHEMA, []), end.sink())
    assert result.rows == 0
    back = MemorySink(schema=SCHEMA)
    await copy(end.source(), back)
    assert back.rows == [] and back.committed_rows is not None
    assert await end.visible() in (0, 1)  # nothing, or one empty file or object


async def test_clogged_consumer_stalls_the_source(end: End) -> None:
    big = [(i, "y" * 200) for i in range(1, end.clog_rows + 1)]
    await copy(MemorySource(SCHEMA, big, batch_rows=1000), end.sink())
    await check_clogged_sink(end.clogged_source, fmt=end.clog_format, depth=2, hold=0.3,
                             max_read_ahead_bytes=end.read_ahead)


async def test_cancelled_copy_leaves_no_output(end: End) -> None:
    if end.atomic:
        await check_abort_leaves_nothing(end.sink, end.visible, ROWS, SCHEMA)
        return
    # idempotent by key: what a cancelled copy wrote is rewritten, not doubled, by a rerun
    gate = anyio.Event()
    source = MemorySource(SCHEMA, ROWS, batch_rows=50, gate=gate, gate_after=3)
    with anyio.move_on_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(copy, source, end.sink(), CopyOptions(stream_depth=1))
            await source.at_gate.wait()
            await anyio.sleep(0.2)
            tg.cancel_scope.cancel()
    await copy(MemorySource(SCHEMA, ROWS), end.sink())
    assert await end.visible() == len(ROWS)


async def test_missing_target_is_a_terminal_connector_error(end: End) -> None:
    with pytest.raises(ConnectorError) as info:
        await copy(end.missing(), MemorySink(schema=SCHEMA))
    err = info.value
    assert isinstance(err, TerminalError) and not err.transient
    assert "missing" in str(err)  # it names what is missing


async def test_unreachable_server_is_a_transient_connector_error(end: End) -> None:
    if end.unreachable is None:
        assert end.name == "file"  # a local file has no server to be out of reach
        return
    with anyio.fail_after(60), pytest.raises(ConnectorError) as info:
        await copy(end.unreachable(), MemorySink(schema=SCHEMA))
    err = info.value
    assert isinstance(err, TransientError) and err.transient
    assert err.__cause__ is not None


# --- one fixture per connector -----------------------------------------------------------------


@pytest.fixture(params=["file", "s3", "postgresql", "mysql", "dynamodb"])
def end(request: pytest.FixtureRequest) -> Iterator[End]:
    make = {"file": _file, "s3": _s3, "postgresql": _postgres, "mysql": _mysql,
            "dynamodb": _dynamodb}[request.param]
    yield from make(request)


def _file(request: pytest.FixtureRequest) -> Iterator[End]:
    root: Path = request.getfixturevalue("tmp_path") / "out"
    target = str(root / "t.csv")

    def files() -> int:
        return len([p for p in root.rglob("*") if p.is_file()]) if root.exists() else 0

    async def visible() -> int:
        return await anyio.to_thread.run_sync(files)

    yield End("file", lambda: LocalSink(target), lambda: LocalSource(target), visible,
              lambda: LocalSource(target, chunk_size=4096), CSV, 4 * 4096, 20_000,
              lambda: LocalSource(str(root / "missing.csv")), None)


def _s3(request: pytest.FixtureRequest) -> Iterator[End]:
    bucket: str = request.getfixturevalue("s3_bucket")
    client = aws.client("s3", request.getfixturevalue("s3_endpoint"))
    request.addfinalizer(client.close)
    url = f"s3://{bucket}/conformance/t.csv"
    chunk, parallel = 256 * 1024, 2

    async def visible() -> int:
        listed = client.list_objects_v2(Bucket=bucket, Prefix="conformance/")
        pending = client.list_multipart_uploads(Bucket=bucket, Prefix="conformance/")
        return len(listed.get("Contents", [])) + len(pending.get("Uploads", []))

    yield End("s3", lambda: S3Sink(url), lambda: S3Source(url), visible,
              lambda: S3Source(url, chunk_size=chunk, parallel=parallel), CSV,
              # the reorder window (parallel ranges + the one delivered) plus the stream slots
              (parallel + 1 + 2 + 1) * chunk, 20_000,
              lambda: S3Source(f"s3://{bucket}/conformance/missing.csv"),
              lambda: S3Source(url, endpoint_url=f"http://127.0.0.1:{closed_port()}"))


def _postgres(request: pytest.FixtureRequest) -> Iterator[End]:
    dsn: str = request.getfixturevalue("pg_database")
    anyio.run(_pg_execute, dsn, "CREATE TABLE t (id bigint, name text)")
    ep = PostgresEndpoint.from_url(f"{dsn}?table=t")
    small = ep.model_copy(update={"chunk_size": 64 * 1024})
    port = closed_port()
    unreachable = dsn.replace(dsn.split("@")[1].split("/")[0], f"127.0.0.1:{port}")

    async def visible() -> int:
        return int((await _pg_fetch(dsn, "SELECT count(*) FROM t"))[0][0])

    yield End("postgresql", lambda: PostgresSink(ep), lambda: PostgresSource(ep), visible,
              # the stream's slots, the chunk sent and the one gathered, what asyncpg holds
              lambda: PostgresSource(small), CSV, 8 * 64 * 1024, 20_000,
              lambda: PostgresSource(ep.model_copy(update={"table": "missing"})),
              lambda: PostgresSource(PostgresEndpoint.from_url(f"{unreachable}?table=t")))


def _mysql(request: pytest.FixtureRequest) -> Iterator[End]:
    dsn: str = request.getfixturevalue("mysql_database")
    _my_execute(dsn, "CREATE TABLE t (id bigint, name text)")
    ep = MySqlEndpoint.from_url(f"{dsn}?table=t")
    small = ep.model_copy(update={"chunk_size": 64 * 1024})
    port = closed_port()
    unreachable = dsn.replace(dsn.split("@")[1].split("/")[0], f"127.0.0.1:{port}")

    async def visible() -> int:
        return int(_my_execute(dsn, "SELECT count(*) FROM t")[0][0])

    yield End("mysql", lambda: MySqlSink(ep), lambda: MySqlSource(ep), visible,
              # the stream's slots and the chunk being sent
              lambda: MySqlSource(small), CSV, 4 * 64 * 1024, 20_000,
              lambda: MySqlSource(ep.model_copy(update={"table": "missing"})),
              lambda: MySqlSource(MySqlEndpoint.from_url(f"{unreachable}?table=t")))


def _dynamodb(request: pytest.FixtureRequest) -> Iterator[End]:
    endpoint: str = request.getfixturevalue("dynamodb_endpoint")
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
    client = aws.client("dynamodb", endpoint)
    name = f"t_{secrets.token_hex(6)}"
    client.create_table(TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
                        BillingMode="PAY_PER_REQUEST")
    client.get_waiter("table_exists").wait(TableName=name,
                                           WaiterConfig={"Delay": 0.05, "MaxAttempts": 100})
    table = DynamoDBTable(table_name=name, columns=SCHEMA.columns)
    one = EndpointOptions(parallel=1)

    async def visible() -> int:
        return int(client.scan(TableName=name, Select="COUNT")["Count"])

    def unreachable() -> Source:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{closed_port()}")
        return DynamoDBSource(table, one, retry=FAST_RETRY)

    try:
        yield End("dynamodb", lambda: DynamoDBSink(table), lambda: DynamoDBSource(table),
                  visible,
                  # one Scan page of 100 items in flight, plus the stream's slots of pages
                  lambda: DynamoDBSource(table, one, page_limit=100), None, 4 * 100, 2_000,
                  lambda: DynamoDBSource(table.model_copy(update={"table_name": "missing"}),
                                         retry=FAST_RETRY),
                  unreachable, atomic=False)
    finally:
        client.delete_table(TableName=name)
        client.close()


# --- plain drivers, to see what a connector left -----------------------------------------------


async def _pg_execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _pg_fetch(dsn: str, sql: str) -> list[Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def _my_execute(dsn: str, sql: str) -> list[Any]:
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(dsn)
    conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                           user=unquote(parts.username or "root"),
                           password=unquote(parts.password or ""),
                           database=parts.path.lstrip("/"), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()

