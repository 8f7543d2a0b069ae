"""Every wait for a server is bounded (issue 10, part 2): a server that accepts the connection and
then says nothing fails the copy in bounded time, as a transient :class:`TimedOut` naming the
endpoint, the phase and the seconds, whichever end it is and whenever it falls silent.

Each system sits behind the TCP fault proxy, whose blackhole accepts connections and forwards
nothing: set before the copy (the connect), or once data flows (mid-stream). The endpoints get
2 s timeouts so the suite stays fast; ``benchmarks/silent_server.py`` measures the defaults.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import anyio
import asyncpg
import pymysql
import pytest

from connectors import aws, mysql, postgres
from connectors.base import CSV, DYNAMODB_JSONL, EndpointOptions, Sink, Source
from connectors.copy import copy
from connectors.dynamodb import DynamoDBSink, DynamoDBSource, DynamoDBTable
from connectors.errors import TimedOut
from connectors.s3 import S3Sink, S3Source
from connectors.testing import FaultProxy, MemorySink, MemorySource
from tests.integration.sql_kit import IDS, csv_bytes
from tests.services import aws as services_aws

pytestmark = pytest.mark.anyio

#: The endpoints' connect_timeout and read_timeout in these tests.
BOUND = 2.0
#: What a bounded failure may take beyond its bound (the copy's own teardown, a busy machine).
SLACK = 4.0
NULL_WORD_CSV = CSV.replace(null="NULL")


async def timed_out(source: Source, sink: Sink, proxy: FaultProxy, *,
                    blackhole_when: Callable[[FaultProxy], bool] | None = None) -> TimedOut:
    """Run the copy with ``proxy`` blackholed now (``blackhole_when`` None) or once
    ``blackhole_when(proxy)`` holds; it must fail with TimedOut within BOUND + SLACK, not sooner
    than BOUND after the silence began. Returns the error."""
    if blackhole_when is None:
        proxy.blackhole()
    silent_since: list[float] = [time.monotonic()]
    caught: list[TimedOut] = []

    async def watch() -> None:
        assert blackhole_when is not None
        for _ in range(3000):  # data flows within 30 s
            if blackhole_when(proxy):
                break
            await anyio.sleep(0.01)
        proxy.blackhole()
        silent_since[0] = time.monotonic()

    async def run() -> None:
        with pytest.raises(TimedOut) as info:
            await copy(source, sink)
        caught.append(info.value)
        tg.cancel_scope.cancel()

    with anyio.fail_after(BOUND * 4 + SLACK * 2):  # a hang fails the test, not the suite
        async with anyio.create_task_group() as tg:
            if blackhole_when is not None:
                tg.start_soon(watch)
            tg.start_soon(run)
    waited = time.monotonic() - silent_since[0]
    err = caught[0]
    assert err.transient
    assert BOUND * 0.9 <= waited <= BOUND + SLACK, waited
    assert err.seconds == BOUND
    assert f"phase {err.phase}" in str(err) and f"{BOUND:g} s" in str(err)
    return err


def bytes_down_past(n: int) -> Callable[[FaultProxy], bool]:
    return lambda proxy: proxy.bytes_down > n


def bytes_up_past(n: int) -> Callable[[FaultProxy], bool]:
    return lambda proxy: proxy.bytes_up > n


def assert_names_endpoint(err: TimedOut, port: int, secret: str | None = None) -> None:
    assert f"127.0.0.1:{port}" in str(err), str(err)
    if secret:
        assert secret not in str(err)


# --- MySQL ---------------------------------------------------------------------------------------

def mysql_run(dsn: str, statement: str) -> list[tuple[Any, ...]]:
    from urllib.parse import urlsplit

    p = urlsplit(dsn)
    conn = pymysql.connect(host=p.hostname, port=p.port, user=p.username or "root",
                           database=p.path.lstrip("/"), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return list(cur.fetchall())
    finally:
        conn.close()


def mysql_via(dsn: str, proxy: FaultProxy, table: str = "t") -> str:
    return (dsn.replace(":53306/", f":{proxy.port}/")
            + f"?table={table}&connect_timeout={BOUND:g}&read_timeout={BOUND:g}")


async def test_mysql_source_silent_at_connect(mysql_database: str) -> None:
    mysql_run(mysql_database, "CREATE TABLE t (id int, name text)")
    async with FaultProxy("127.0.0.1", 53306) as proxy:
        source = mysql.source_from_url(mysql_via(mysql_database, proxy), EndpointOptions())
        err = await timed_out(source, MemorySink(CSV), proxy)
    assert (err.phase, err.setting) == ("greeting", "connect_timeout")
    assert_names_endpoint(err, proxy.port)


async def test_mysql_source_silent_mid_stream(mysql_database: str) -> None:
    mysql_run(mysql_database, "CREATE TABLE t (id int, name text)")
    mysql_run(mysql_database, "INSERT INTO t SELECT seq, REPEAT('x', 100) FROM seq_1_to_100000")
    async with FaultProxy("127.0.0.1", 53306) as proxy:
        source = mysql.source_from_url(mysql_via(mysql_database, proxy), EndpointOptions())
        out = MemorySink(CSV)
        err = await timed_out(source, out, proxy, blackhole_when=bytes_down_past(200_000))
    assert (err.phase, err.setting) == ("read", "read_timeout")
    assert out.committed_bytes is None  # nothing half-read was handed on as complete


async def test_mysql_sink_silent_at_connect(mysql_database: str) -> None:
    mysql_run(mysql_database, "CREATE TABLE t (id bigint, name text)")
    async with FaultProxy("127.0.0.1", 53306) as proxy:
        sink = mysql.sink_from_url(mysql_via(mysql_database, proxy), EndpointOptions())
        source = MemorySource(IDS, data=csv_bytes(1000), fmt=NULL_WORD_CSV)
        err = await timed_out(source, sink, proxy)
    assert (err.phase, err.setting) == ("greeting", "connect_timeout")


async def test_mysql_sink_silent_mid_load(mysql_database: str) -> None:
    """The server stops taking LOAD DATA's bytes: the wait for the send buffer is bounded
    (phase write), and nothing of the load is committed."""
    mysql_run(mysql_database, "CREATE TABLE t (id bigint, name text)")
    async with FaultProxy("127.0.0.1", 53306) as proxy:
        sink = mysql.sink_from_url(mysql_via(mysql_database, proxy), EndpointOptions())
        source = MemorySource(IDS, data=csv_bytes(500_000), fmt=NULL_WORD_CSV)
        err = await timed_out(source, sink, proxy, blackhole_when=bytes_up_past(300_000))
    assert (err.phase, err.setting) == ("write", "read_timeout")
    assert mysql_run(mysql_database, "SELECT count(*) FROM t") == [(0,)]


async def test_mysql_timeouts_from_jdbc_properties() -> None:
    """Connector/J's ``connectTimeout``/``socketTimeout`` (milliseconds) on a jdbc: URL set the
    same bounds; headrace's own names (seconds) win; 0 is no bound; nonsense is refused."""
    ep = mysql.MySqlEndpoint.from_url(
        "jdbc:mysql://h:3306/db?connectTimeout=2500&socketTimeout=0&table=t")
    assert (ep.connect_timeout, ep.read_timeout) == (2.5, None)
    ep = mysql.MySqlEndpoint.from_url("mysql://h/db?connectTimeout=2500&connect_timeout=4")
    assert ep.connect_timeout == 4
    assert mysql.MySqlEndpoint.from_url("mysql://h/db").timeouts.read == 30
    from connectors.errors import ConfigError

    with pytest.raises(ConfigError, match="read_timeout='soon'"):
        mysql.MySqlEndpoint.from_url("mysql://h/db?read_timeout=soon")


# --- PostgreSQL ----------------------------------------------------------------------------------

async def pg_run(dsn: str, statement: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(statement)]
    finally:
        await conn.close()


def pg_via(dsn: str, proxy: FaultProxy, table: str = "t") -> str:
    return (dsn.replace(":55432/", f":{proxy.port}/")
            + f"?table={table}&connect_timeout={BOUND:g}&read_timeout={BOUND:g}")


async def test_postgres_source_silent_at_connect(pg_database: str) -> None:
    """PostgreSQL used to fail here with an empty ``TimeoutError:``."""
    await pg_run(pg_database, "CREATE TABLE t (id int, name text)")
    async with FaultProxy("127.0.0.1", 55432) as proxy:
        source = postgres.source_from_url(pg_via(pg_database, proxy), EndpointOptions())
        err = await timed_out(source, MemorySink(CSV), proxy)
    assert (err.phase, err.setting) == ("connect", "connect_timeout")
    assert_names_endpoint(err, proxy.port)


@pytest.mark.parametrize("lane", ["bytes", "rows"])
async def test_postgres_source_silent_mid_stream(pg_database: str, lane: str) -> None:
    await pg_run(pg_database, "CREATE TABLE t (id int, name text)")
    await pg_run(pg_database, "INSERT INTO t SELECT i, repeat('x', 100) "
                              "FROM generate_series(1, 100000) i")
    async with FaultProxy("127.0.0.1", 55432) as proxy:
        source = postgres.source_from_url(pg_via(pg_database, proxy), EndpointOptions())
        out = MemorySink(CSV if lane == "bytes" else None)
        err = await timed_out(source, out, proxy, blackhole_when=bytes_down_past(200_000))
    assert (err.phase, err.setting) == ("read", "read_timeout")
    assert out.committed_bytes is None and out.committed_rows is None


async def test_postgres_sink_silent_at_connect(pg_database: str) -> None:
    await pg_run(pg_database, "CREATE TABLE t (id bigint, name text)")
    async with FaultProxy("127.0.0.1", 55432) as proxy:
        sink = postgres.sink_from_url(pg_via(pg_database, proxy), EndpointOptions())
        source = MemorySource(IDS, data=csv_bytes(1000), fmt=CSV)
        err = await timed_out(source, sink, proxy)
    assert (err.phase, err.setting) == ("connect", "connect_timeout")


@pytest.mark.parametrize("lane", ["bytes", "rows"])
async def test_postgres_sink_silent_mid_load(pg_database: str, lane: str) -> None:
    """The server falls silent mid-load: bounded, and nothing is committed. The bytes lane is
    one COPY whose bytes the server stops taking (phase write); the rows lane is one binary
    COPY per batch, small enough to sit in the buffers, whose reply never comes (read)."""
    await pg_run(pg_database, "CREATE TABLE t (id bigint, name text)")
    async with FaultProxy("127.0.0.1", 55432) as proxy:
        sink = postgres.sink_from_url(pg_via(pg_database, proxy), EndpointOptions())
        if lane == "bytes":
            source = MemorySource(IDS, data=csv_bytes(500_000), fmt=CSV)
        else:
            source = MemorySource(IDS, [(i, f"name {i}") for i in range(500_000)],
                                  batch_rows=5000)
        err = await timed_out(source, sink, proxy, blackhole_when=bytes_up_past(300_000))
    assert (err.phase, err.setting) == ("write" if lane == "bytes" else "read", "read_timeout")
    assert await pg_run(pg_database, "SELECT count(*) FROM t") == [(0,)]


async def test_postgres_timeouts_from_jdbc_properties() -> None:
    """pgJDBC's properties are in seconds; ``loginTimeout`` bounds the connect as a whole."""
    ep = postgres.PostgresEndpoint.from_url(
        "jdbc:postgresql://h:5432/db?loginTimeout=3&socketTimeout=45")
    assert (ep.connect_timeout, ep.read_timeout) == (3, 45)
    assert postgres.PostgresEndpoint.from_url("postgresql://h/db").timeouts.connect == 10


# --- S3 ------------------------------------------------------------------------------------------

MiB = 1024 * 1024


def s3_via(proxy: FaultProxy) -> str:
    """The proxy as an S3 endpoint, its timeouts on the URL (as AWS_ENDPOINT_URL_S3 takes)."""
    return f"http://127.0.0.1:{proxy.port}?connect_timeout={BOUND:g}&read_timeout={BOUND:g}"


def s3_port(s3_endpoint: str) -> int:
    return int(s3_endpoint.rsplit(":", 1)[1])


async def put_object(bucket: str, key: str, data: bytes) -> None:
    async with aws.client("s3") as c:
        await c.put_object(Bucket=bucket, Key=key, Body=data)


async def test_s3_source_silent_at_connect(s3_bucket: str, s3_endpoint: str) -> None:
    """S3 used to take ~380 s here (60 s read timeout, tried again and again). The proxy
    takes the TCP connection, so the silence is the reply's: phase read."""
    await put_object(s3_bucket, "in/data.csv", csv_bytes(1000))
    async with FaultProxy("127.0.0.1", s3_port(s3_endpoint)) as proxy:
        source = S3Source(f"s3://{s3_bucket}/in/data.csv", endpoint_url=s3_via(proxy))
        err = await timed_out(source, MemorySink(CSV), proxy)
    assert (err.phase, err.setting) == ("read", "read_timeout")
    # one for the read, one for the progress line's size lookup: neither tried again
    assert proxy.connections <= 2


async def test_s3_source_silent_mid_body(s3_bucket: str, s3_endpoint: str) -> None:
    await put_object(s3_bucket, "in/big.csv", csv_bytes(1_000_000))
    async with FaultProxy("127.0.0.1", s3_port(s3_endpoint)) as proxy:
        source = S3Source(f"s3://{s3_bucket}/in/big.csv", chunk_size=4 * MiB, parallel=1,
                          endpoint_url=s3_via(proxy))
        out = MemorySink(CSV)
        err = await timed_out(source, out, proxy, blackhole_when=bytes_down_past(MiB))
    assert (err.phase, err.setting) == ("read", "read_timeout")
    # the object is named, as s3://bucket/key when the silence falls in a body read, or as
    # its URL on the endpoint when it falls before the next ranged GET's reply
    assert "in/big.csv" in str(err) and out.committed_bytes is None


async def test_s3_sink_silent_at_connect(s3_bucket: str, s3_endpoint: str) -> None:
    async with FaultProxy("127.0.0.1", s3_port(s3_endpoint)) as proxy:
        sink = S3Sink(f"s3://{s3_bucket}/out/", CSV, endpoint_url=s3_via(proxy))
        err = await timed_out(MemorySource(IDS, data=csv_bytes(1000), fmt=CSV), sink, proxy)
    assert (err.phase, err.setting) == ("read", "read_timeout")


async def test_s3_sink_silent_mid_upload(s3_bucket: str, s3_endpoint: str) -> None:
    """The server stops taking a part's bytes (the HTTP client has no timeout of its own while
    it sends a body): bounded, phase write, and no object becomes visible."""
    async with FaultProxy("127.0.0.1", s3_port(s3_endpoint)) as proxy:
        sink = S3Sink(f"s3://{s3_bucket}/out/", CSV, part_size=16 * MiB, parallel=1,
                      endpoint_url=s3_via(proxy))
        source = MemorySource(IDS, data=csv_bytes(1_500_000), fmt=CSV)
        err = await timed_out(source, sink, proxy, blackhole_when=bytes_up_past(MiB))
    assert (err.phase, err.setting) == ("write", "read_timeout")
    async with aws.client("s3") as c:
        assert (await c.list_objects_v2(Bucket=s3_bucket)).get("KeyCount") == 0


# --- DynamoDB (timeouts on AWS_ENDPOINT_URL_DYNAMODB's query) ------------------------------------

def ddb_table(endpoint: str, items: int) -> str:
    """A new table ``id``-keyed with ``items`` items of ~300 bytes; returns its name."""
    client = services_aws.client("dynamodb", endpoint)
    try:
        name = f"t_{secrets.token_hex(6)}"
        client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}])
        client.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 100})
        for start in range(0, items, 25):
            left: Any = {name: [{"PutRequest": {"Item": {"id": {"N": str(i)},
                                                         "pad": {"S": "p" * 300}}}}
                                for i in range(start, min(start + 25, items))]}
            while left:
                left = client.batch_write_item(RequestItems=left).get("UnprocessedItems")
        return name
    finally:
        client.close()


def ddb_via(monkeypatch: pytest.MonkeyPatch, proxy: FaultProxy) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{proxy.port}"
                       f"?connect_timeout={BOUND:g}&read_timeout={BOUND:g}")


def port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


async def test_dynamodb_source_silent_at_connect(dynamodb_endpoint: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    table = ddb_table(dynamodb_endpoint, 10)
    async with FaultProxy("127.0.0.1", port_of(dynamodb_endpoint)) as proxy:
        ddb_via(monkeypatch, proxy)
        source = DynamoDBSource(DynamoDBTable(table_name=table))
        err = await timed_out(source, MemorySink(DYNAMODB_JSONL), proxy)
    assert (err.phase, err.setting) == ("read", "read_timeout")
    assert_names_endpoint(err, proxy.port)


async def test_dynamodb_source_silent_mid_scan(dynamodb_endpoint: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    table = ddb_table(dynamodb_endpoint, 4000)
    async with FaultProxy("127.0.0.1", port_of(dynamodb_endpoint)) as proxy:
        ddb_via(monkeypatch, proxy)
        source = DynamoDBSource(DynamoDBTable(table_name=table), EndpointOptions(parallel=1),
                                page_limit=500)
        out = MemorySink(DYNAMODB_JSONL)
        err = await timed_out(source, out, proxy, blackhole_when=bytes_down_past(300_000))
    assert (err.phase, err.setting) == ("read", "read_timeout")
    assert out.committed_bytes is None


async def test_dynamodb_sink_silent_at_connect(dynamodb_endpoint: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    table = ddb_table(dynamodb_endpoint, 0)
    async with FaultProxy("127.0.0.1", port_of(dynamodb_endpoint)) as proxy:
        ddb_via(monkeypatch, proxy)
        sink = DynamoDBSink(DynamoDBTable(table_name=table))
        source = MemorySource(IDS, [(i, f"name {i}") for i in range(100)])
        err = await timed_out(source, sink, proxy)
    assert (err.phase, err.setting) == ("read", "read_timeout")


async def test_dynamodb_sink_silent_mid_write(dynamodb_endpoint: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    table = ddb_table(dynamodb_endpoint, 0)
    async with FaultProxy("127.0.0.1", port_of(dynamodb_endpoint)) as proxy:
        ddb_via(monkeypatch, proxy)
        sink = DynamoDBSink(DynamoDBTable(table_name=table), EndpointOptions(parallel=1))
        source = MemorySource(IDS, [(i, "n" * 200) for i in range(20_000)], batch_rows=500)
        err = await timed_out(source, sink, proxy, blackhole_when=bytes_up_past(100_000))
    assert (err.phase, err.setting) == ("read", "read_timeout")
    assert "BatchWriteItem" in str(err)


# --- SNS (an SnsAlarm's publish) -----------------------------------------------------------------

async def test_sns_publish_to_a_silent_endpoint_is_bounded(
        sns_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = services_aws.client("sns", sns_endpoint)
    try:
        arn = client.create_topic(Name=f"t-{secrets.token_hex(4)}")["TopicArn"]
    finally:
        client.close()
    async with FaultProxy("127.0.0.1", port_of(sns_endpoint)) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", f"http://127.0.0.1:{proxy.port}"
                           f"?connect_timeout={BOUND:g}&read_timeout={BOUND:g}")
        proxy.blackhole()
        started = time.monotonic()
        with pytest.raises(TimedOut) as info:
            with anyio.fail_after(BOUND * 4 + SLACK):
                await aws.publish_sns(arn, "subject", "message")
        waited = time.monotonic() - started
    assert BOUND * 0.9 <= waited <= BOUND + SLACK
    assert (info.value.phase, info.value.operation) == ("read", "Publish")
    assert proxy.connections == 1


# --- SqlActivity scripts: a statement may rightly run long ---------------------------------------

async def test_script_statements_are_bounded_only_where_the_endpoint_says(
        pg_database: str, mysql_database: str) -> None:
    """A script's statement keeps the server busy and silent while it runs: the default
    read_timeout does not cut it off (attemptTimeout bounds the attempt), an explicit one
    does, and the connect stays bounded either way."""
    pg = postgres.PostgresEndpoint.from_url(pg_database)
    assert (pg.for_statements().read_timeout, pg.for_statements().connect_timeout) == (None, 10)
    explicit = postgres.PostgresEndpoint.from_url(f"{pg_database}?read_timeout=1")
    assert explicit.for_statements().read_timeout == 1
    started = time.monotonic()
    with pytest.raises(TimedOut) as info:
        await postgres.execute_script(explicit, "SELECT pg_sleep(3)")
    assert info.value.phase == "read" and time.monotonic() - started < 2.5
    assert mysql.MySqlEndpoint.from_url(mysql_database).for_statements().read_timeout is None
    my = mysql.MySqlEndpoint.from_url(f"{mysql_database}?read_timeout=1")
    with pytest.raises(TimedOut):
        await mysql.execute_script(my, "SELECT SLEEP(3)")


# --- connections held idle on purpose (partitioned reads and loads) ------------------------------

async def test_partitioned_read_and_load_idle_connections_do_not_time_out(
        pg_database: str) -> None:
    """A partitioned read's coordinator and a parallel load's own connection idle while the
    part connections work, and a loader waits on the copy's input: none of that is the
    server's silence. A 1 s read_timeout; the copies take longer (a slow consumer, a held
    source) and still finish whole."""
    await pg_run(pg_database, "CREATE TABLE t (id int PRIMARY KEY, name text)")
    await pg_run(pg_database, "INSERT INTO t SELECT i, repeat('x', 100) "
                              "FROM generate_series(1, 100000) i")
    await pg_run(pg_database, "CREATE TABLE t_in (id bigint, name text)")
    url = f"{pg_database}?read_timeout=1"
    slow = MemorySink(CSV, delay=0.3)
    started = time.monotonic()
    await copy(postgres.source_from_url(f"{url}&table=t",
                                        EndpointOptions(partitions=2, chunk_size=1024 * 1024)),
               slow)
    assert time.monotonic() - started > 2.5  # longer than the bound, with the coordinator idle
    assert slow.committed_bytes is not None and slow.committed_bytes.count(b"\n") == 100_000

    gate = anyio.Event()
    held = MemorySource(IDS, data=csv_bytes(100_000), fmt=CSV, chunk_size=64 * 1024,
                        gate=gate, gate_after=3)

    async def open_later() -> None:
        await held.at_gate.wait()
        await anyio.sleep(2.5)
        gate.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(open_later)
        await copy(held, postgres.sink_from_url(f"{url}&table=t_in",
                                                EndpointOptions(partitions=2)))
    assert await pg_run(pg_database, "SELECT count(*), count(DISTINCT id) FROM t_in") == \
        [(100_000, 100_000)]
